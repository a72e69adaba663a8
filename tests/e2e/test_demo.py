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
    # a plain create-repository brought into line by the settings guard, the KMS gap reported, one message
    assert result["settings"]["mutability"] == "IMMUTABLE"
    assert result["settings"]["lifecycle_rules"] == 5  # the guide's four and quarantine retention
    assert result["settings"]["tags"]["ecr-warden:noncompliant"] == "encryption"
    assert any("Repository settings enforced: ses-base/scratchpad" in h for h in headers)
    assert "encryption AES256: reported, never recreated" in text
    # and the doctor finds everything a deployment needs in place
    assert result["doctor_exit"] == 0, text
    assert "✓ registry scanning [required]" in text
    assert "Traceback" not in text
