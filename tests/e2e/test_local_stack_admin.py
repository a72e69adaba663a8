"""The admin function as a person drives it: `aws lambda invoke` against `ecr-warden local`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e

REPOSITORY = "e2e/admin"


def invoke(stack: RunningStack, tmp_path: Path, payload: dict[str, Any]) -> dict[str, Any]:
    request = tmp_path / "payload.json"
    request.write_text(json.dumps(payload))
    out = tmp_path / "out.json"
    response = stack.aws(
        "lambda", "invoke", "--function-name", "ecr-warden-dev-admin", "--payload", f"file://{request}", str(out)
    )
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def test_admin_function_quarantines_exempts_and_refuses_bad_input(stack: RunningStack, tmp_path: Path) -> None:
    stack.aws("ecr", "create-repository", "--repository-name", REPOSITORY)
    result = invoke(stack, tmp_path, {"action": "quarantine", "repository": REPOSITORY, "tag": "nope",
                                      "reason": "leaked key", "by": "alice"})  # fmt: skip
    message = f"{REPOSITORY}:nope does not exist (no such tag or repository)"
    assert result == {"ok": False, "error": {"type": "rejected", "field": "tag", "message": message}}
    added = invoke(stack, tmp_path, {"action": "exempt", "operation": "add", "repository": REPOSITORY,
                                     "cve": "CVE-2024-6387", "expires": "2099-01-01", "reason": "accepted",
                                     "approver": "sec@example.com", "by": "alice"})  # fmt: skip
    assert added["error"]["field"] == "expires"  # beyond the policy's max_exemption_days
    assert invoke(stack, tmp_path, {"action": "nuke"})["error"]["field"] == "action"
    listed = invoke(stack, tmp_path, {"action": "exempt", "operation": "list", "by": "alice"})
    assert listed["ok"] is True
    assert listed["requested_by"] == {"identity": "alice", "verified": False}


def test_cli_quarantines_and_releases_through_the_admin_function(stack: RunningStack, tmp_path: Path) -> None:
    """`ecr-warden quarantine` and `release` invoke ecr-warden-dev-admin (no ECR rights needed by the admin):
    the release restores exactly the tags the quarantine took, and says so."""
    from ecr_warden_tools.local.images import image_manifest

    repository = "e2e/admin-cli"
    stack.aws("ecr", "create-repository", "--repository-name", repository)
    manifest = tmp_path / "image.json"
    manifest.write_text(image_manifest("admin-cli"))
    pushed = stack.aws(
        "ecr",
        "put-image",
        "--repository-name",
        repository,
        "--image-tag",
        "v1",
        "--image-manifest",
        f"file://{manifest}",
    )
    digest = pushed["image"]["imageId"]["imageDigest"]
    common = ["--by", "alice@example.com", "--endpoint-url", stack.endpoint_url, "--region", "us-east-1"]

    quarantined = stack.cli("quarantine", "--repository", repository, "--tag", "v1", "--reason", "leaked key", *common)
    assert quarantined.returncode == 0, quarantined.stderr
    assert quarantined.stdout.startswith("quarantined:")

    def tags() -> list[str]:
        details = stack.aws("ecr", "describe-images", "--repository-name", repository, "--image-ids",
                            f"imageDigest={digest}")["imageDetails"]  # fmt: skip
        return sorted(details[0].get("imageTags") or [])

    assert tags() == ["quarantined-" + digest[7:19]]
    released = stack.cli("release", "--repository", repository, "--digest", digest, "--reason", "rotated", *common)
    assert released.returncode == 0, released.stderr
    assert "restored tags: v1" in released.stdout
    assert tags() == ["v1"]
    unknown = stack.cli(
        "release", "--repository", repository, "--digest", "sha256:" + "0" * 64, "--reason", "typo", *common,
        check=False,
    )  # fmt: skip
    assert unknown.returncode == 1
    assert len(unknown.stderr.strip().splitlines()) == 1


def test_cli_report_in_markdown_through_the_admin_function(stack: RunningStack) -> None:
    """`ecr-warden report --format markdown` on the local stack: drift, quarantined images and costs."""
    repository = "e2e/report"
    stack.aws("ecr", "create-repository", "--repository-name", repository)
    common = ["--by", "alice@example.com", "--endpoint-url", stack.endpoint_url, "--region", "us-east-1"]
    report = stack.cli("report", "--repository", repository, "--format", "markdown", *common, check=False)
    assert report.returncode == 0, report.stderr
    text = report.stdout
    assert text.startswith("# "), text[:200]
    assert repository in text
    assert "GB-month" in text  # the cost line states its price
    assert "Traceback" not in report.stderr
