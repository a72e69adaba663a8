"""The shipped GitHub Actions example fixes the operations guide's workflow instead of copying its flaws."""

from __future__ import annotations

import yaml

from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "github-actions" / "build-push-gate.yml"


def test_the_example_gates_on_the_pushed_digest_with_oidc_and_no_race() -> None:
    workflow = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    steps = workflow["jobs"]["build"]["steps"]
    scripts = "\n".join(step.get("run", "") for step in steps)
    assert workflow["permissions"]["id-token"] == "write", "OIDC, not stored keys"
    assert "ecr-warden gate" in scripts
    assert '--digest "${{ steps.push.outputs.digest }}"' in scripts
    assert "sleep" not in scripts, "a fixed sleep races the scan"
    assert "|| echo" not in scripts, "a failing lookup must never read as clean"
    assert ":latest" not in scripts, "IMMUTABLE repositories reject a re-pushed latest"
    assert not any("AWS_SECRET_ACCESS_KEY" in str(step) for step in steps)
