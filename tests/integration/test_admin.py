"""Admin actions: release restores exactly, exemptions land in the deployed policy (validated)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ecr_warden.actions.release import ReleaseError
from ecr_warden.adapters import aws as aws_clients
from ecr_warden.domain.records import ImageStatus
from ecr_warden_tools import admin
from ecr_warden_tools.local.images import image_manifest
from tests.integration import events
from tests.integration.conftest import REPOSITORY, Env
from tests.integration.test_scan_gate import CRITICAL

DEPLOYMENT = admin.Deployment("dev", "us-east-1")


@pytest.fixture(autouse=True)
def _fresh_clients() -> None:
    aws_clients.reset_clients()


def test_release_restores_exactly_the_recorded_tags(aws: Env) -> None:
    aws.create_repository(immutable=False)
    digest = aws.push("v1.2.3", "bad")
    aws.ecr.put_image(repositoryName=REPOSITORY, imageManifest=image_manifest("bad"), imageTag="stable")
    aws.enhanced.findings[(REPOSITORY, digest)] = list(CRITICAL)
    aws.gate().handle(events.inspector_scan(digest, [], {"CRITICAL": 1, "TOTAL": 2}))
    assert aws.tags(digest) == ["quarantined-" + digest[7:19]]

    outcome = admin.release(DEPLOYMENT, REPOSITORY, digest, reason="false positive, see SEC-42", by="alice")
    assert outcome.action == "released"
    assert aws.tags(digest) == ["stable", "v1.2.3"]
    record = aws.record(digest)
    assert record is not None
    assert record.status is ImageStatus.RELEASED
    assert record.history[-1].reason == "released by alice: false positive, see SEC-42"
    assert [d["action"] for d in aws.decisions()] == ["quarantined", "released"]
    # a late scan with the same findings does not re-block it
    assert aws.gate().handle(events.inspector_scan(digest, ["v1.2.3"], {"CRITICAL": 1, "TOTAL": 2})).action == (
        "kept_released"
    )
    assert admin.release(DEPLOYMENT, REPOSITORY, digest, reason="again", by="alice").action == "noop"


def test_release_in_an_immutable_repository_keeps_conflicting_tags_out(aws: Env) -> None:
    aws.create_repository()
    digest = aws.push("v1", "bad")
    aws.enhanced.findings[(REPOSITORY, digest)] = list(CRITICAL)
    aws.gate().handle(events.inspector_scan(digest, ["v1"], {"CRITICAL": 1, "TOTAL": 2}))
    aws.push("v1", "someone-else")  # while quarantined, v1 was pushed again for a fixed image
    newer = aws.ecr.describe_images(repositoryName=REPOSITORY, imageIds=[{"imageTag": "v1"}])["imageDetails"][0]
    outcome = admin.release(DEPLOYMENT, REPOSITORY, digest, reason="fixed elsewhere", by="bob")
    assert outcome.action == "release_incomplete"  # never "released" when a recorded tag did not come back
    assert f"not restored (now on another image): v1 -> {newer['imageDigest']}" in outcome.reason
    assert "restored: none" in outcome.reason
    assert aws.tags(digest) == ["quarantined-" + digest[7:19]]  # never left without a tag
    announced = aws.decisions()[-1]
    assert announced["action"] == "release_incomplete"
    assert announced["not_restored"] == {"v1": newer["imageDigest"]}
    assert announced["tags"] == []
    again = admin.release(DEPLOYMENT, REPOSITORY, digest, reason="again", by="bob")
    assert again.action == "release_incomplete"  # a re-run says so again


def test_cli_release_exits_3_and_says_what_to_do_when_tags_are_not_restored(
    aws: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    from ecr_warden_tools.cli import main

    aws.create_repository()
    digest = aws.push("v1", "bad")
    aws.enhanced.findings[(REPOSITORY, digest)] = list(CRITICAL)
    aws.gate().handle(events.inspector_scan(digest, ["v1"], {"CRITICAL": 1, "TOTAL": 2}))
    aws.push("v1", "someone-else")
    code = main(
        ["release", "--repository", REPOSITORY, "--digest", digest, "--reason", "fixed elsewhere", "--by", "bob",
         "--in-process", "--region", "us-east-1"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 3
    assert out.startswith("release_incomplete:")
    assert "restored tags: (none)" in out
    assert "use its digest or push a new tag onto it" in err
    assert f"the image: {REPOSITORY}@{digest}" in err


def test_release_of_an_unknown_image_is_a_clear_error(aws: Env) -> None:
    aws.create_repository()
    with pytest.raises(ReleaseError, match="no record"):
        admin.release(DEPLOYMENT, REPOSITORY, "sha256:" + "0" * 64, reason="x", by="y")


def test_cli_exempt_add_list_revoke_through_the_admin_code_and_the_next_decision_applies_it(
    aws: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    from ecr_warden_tools.cli import main

    aws.create_repository()
    digest = aws.push("v1", "bad")
    aws.enhanced.findings[(REPOSITORY, digest)] = [CRITICAL[0]]
    common = ["--by", "alice@example.com", "--in-process", "--region", "us-east-1"]
    expires = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    add = ["exempt", "add", "--cve", "CVE-2024-6387", "--repository", REPOSITORY, "--expires", expires,
           "--reason", "sshd never starts", "--approver", "security@example.com"]  # fmt: skip
    assert main([*add, *common]) == 0
    assert main([*add, *common]) == 1, "an active duplicate is refused"
    assert "already" in capsys.readouterr().err

    outcome = aws.gate().handle(events.inspector_scan(digest, ["v1"], {"CRITICAL": 1, "TOTAL": 1}))
    assert outcome.action == "passed", "the very next decision applies it"
    assert "approved by security@example.com" in json.dumps(aws.decisions()[-1])

    assert main(["exempt", "list", "--repository", REPOSITORY, *common]) == 0
    assert "CVE-2024-6387" in capsys.readouterr().out
    revoke = ["exempt", "revoke", "--cve", "CVE-2024-6387", "--repository", REPOSITORY, "--reason", "patched"]
    assert main([*revoke, *common]) == 0
    # the CloudFormation-managed policy parameter is never written
    stored = aws.clients["ssm"].get_parameter(Name="/ecr-warden/dev/policy")["Parameter"]
    assert stored["Version"] == 1


def test_cli_refuses_an_expiry_beyond_the_maximum_in_one_line(aws: Env, capsys: pytest.CaptureFixture[str]) -> None:
    from ecr_warden_tools.cli import main

    aws.create_repository()
    expires = (datetime.now(UTC) + timedelta(days=400)).date().isoformat()
    code = main(
        ["exempt", "add", "--cve", "CVE-2024-6387", "--repository", REPOSITORY, "--expires", expires, "--reason",
         "later", "--approver", "security@example.com", "--by", "alice", "--in-process", "--region", "us-east-1"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code in (1, 2)
    assert err.startswith("ecr-warden: ")
    assert len(err.strip().splitlines()) == 1
