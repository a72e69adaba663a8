"""`make demo` is the README's first command: it must keep telling the truth about what ECR looks like."""

from __future__ import annotations

from ecr_warden_tools.demo import run_demo
from tests.conftest import TEMPLATE


def test_the_demo_shows_each_guarantee_as_it_happens() -> None:
    lines: list[str] = []
    result = run_demo(TEMPLATE, say=lines.append)
    text = "\n".join(lines)

    assert result["quarantined"]["status"] == "QUARANTINED"
    assert result["quarantined"]["original_tags"] == ["v1.2.3", "v1.2.3-hotfix"]
    assert result["passed"]["status"] == "PASSED"
    assert result["lagging"]["status"] == "QUARANTINED"  # decided by the counts: never passed
    assert [h["action"] for h in result["lagging"]["history"]] == ["findings_lagging", "quarantined"]
    headers = [m["body"]["blocks"][0]["text"]["text"] for m in result["slack_messages"]]
    assert any("Tag of a quarantined image reused: ses-base/api-server:v1.2.3" in h for h in headers)
    assert any("Quarantined: ses-base/api-server:v1.4.0" in h for h in headers)
    assert "v1.2.3 pullable: False" in text
    assert "still pullable by digest: True; by its quarantine tag quarantined-" in text  # says what it doesn't stop
    assert "right after the scan: tags ['v1.4.0']; status PENDING" in text
    assert "Traceback" not in text
