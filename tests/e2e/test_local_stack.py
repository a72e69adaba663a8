"""`ecr-warden local` as a user drives it: AWS CLI and the ecr-warden CLI against the endpoint it prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EVENTS
from tests.e2e.conftest import RunningStack, free_port, run_cli, start_stack, stop_stack


def audit_key(repository: str, digest: str) -> dict[str, dict[str, str]]:
    """The audit table's key on the local stack (moto's account, the stack's region)."""
    return {"pk": {"S": f"123456789012#us-east-1#{repository}"}, "digest": {"S": digest}}


pytestmark = pytest.mark.e2e


def test_prints_the_template_outputs(stack: RunningStack) -> None:
    for name in ("DecisionsTopicArn", "AuditTableName", "ScanGateFunctionName", "DecisionBusName"):
        assert f"  {name} = " in stack.output()
    assert "slack webhook catcher: http://127.0.0.1:" in stack.output()


def test_put_events_reaches_the_matching_handler(stack: RunningStack) -> None:
    sample = json.loads((EVENTS / "ecr-image-action-push.json").read_text())
    entries = [
        {"Source": sample["source"], "DetailType": sample["detail-type"], "Detail": json.dumps(sample["detail"])}
    ]
    before = len(stack.state()["invocations"])
    assert stack.aws("events", "put-events", "--entries", json.dumps(entries))["FailedEntryCount"] == 0
    stack.wait_for(lambda: len(stack.state()["invocations"]) > before, what="handler invocation")
    assert "event 'ECR Image Action' matched rule ecr-warden-dev-scan-gate-ImagePushed -> ScanGateFunction" in (
        stack.output()
    )
    assert '"service":"scan-gate"' in stack.output()


def test_lambda_invoke_runs_the_handler_in_process(stack: RunningStack, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    response = stack.aws(
        "lambda",
        "invoke",
        "--function-name",
        "ecr-warden-dev-scan-gate",
        "--payload",
        f"file://{EVENTS / 'cloudtrail-create-repository.json'}",
        str(out),
    )
    assert response["StatusCode"] == 200
    assert json.loads(out.read_text())["status"] == "rejected"  # CloudTrail events are not the gate's


def test_lambda_functions_are_listed(stack: RunningStack) -> None:
    names = [f["FunctionName"] for f in stack.aws("lambda", "list-functions")["Functions"]]
    assert "ecr-warden-dev-scan-gate" in names


def test_ecr_calls_emit_cloudtrail_events_with_the_caller(stack: RunningStack) -> None:
    stack.aws("ecr", "create-repository", "--repository-name", "e2e/cloudtrail")
    sqs = stack.client("sqs")
    events = stack.client("events")
    queue_url = sqs.create_queue(QueueName="e2e-cloudtrail")["QueueUrl"]
    events.put_rule(Name="e2e-ct", EventPattern=json.dumps({"detail-type": ["AWS API Call via CloudTrail"]}))
    events.put_targets(Rule="e2e-ct", Targets=[{"Id": "q", "Arn": "arn:aws:sqs:us-east-1:123456789012:e2e-cloudtrail"}])
    stack.aws(
        "ecr", "put-image-tag-mutability", "--repository-name", "e2e/cloudtrail", "--image-tag-mutability", "IMMUTABLE"
    )

    def the_admins_call() -> dict[str, Any] | None:
        # the settings guard reacts to create-repository with calls of its own (under its role): skip those
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            detail: dict[str, Any] = json.loads(message["Body"])["detail"]
            if detail["userIdentity"]["type"] == "IAMUser" and detail["eventName"] == "PutImageTagMutability":
                return detail
        return None

    detail = stack.wait_for(the_admins_call, what="CloudTrail event of the admin's call")
    assert detail["requestParameters"]["repositoryName"] == "e2e/cloudtrail"


def _push(stack: RunningStack, repository: str, tag: str, tmp_path: Path, seed: str) -> str:
    from ecr_warden_tools.local.images import image_manifest

    manifest = tmp_path / f"{seed}.json"
    manifest.write_text(image_manifest(seed))
    result = stack.aws(
        "ecr",
        "put-image",
        "--repository-name",
        repository,
        "--image-tag",
        tag,
        "--image-manifest",
        f"file://{manifest}",
    )
    return str(result["image"]["imageId"]["imageDigest"])


def _tags(stack: RunningStack, repository: str, digest: str) -> list[str]:
    details = stack.aws(
        "ecr", "describe-images", "--repository-name", repository, "--image-ids", f"imageDigest={digest}"
    )["imageDetails"]
    return sorted(details[0].get("imageTags") or [])


def test_core_loop_over_http(stack: RunningStack, tmp_path: Path) -> None:
    repository = "ses-base/api-server"
    stack.aws(
        "ecr",
        "create-repository",
        "--repository-name",
        repository,
        "--image-tag-mutability",
        "IMMUTABLE",
        "--image-scanning-configuration",
        "scanOnPush=true",
        "--encryption-configuration",
        "encryptionType=KMS",
    )
    bad = _push(stack, repository, "v1.2.3", tmp_path, "e2e-bad")
    quarantine_tag = "quarantined-" + bad[7:19]

    stack.cli(
        "scan",
        "--endpoint-url",
        stack.endpoint_url,
        "--repository",
        repository,
        "--tag",
        "v1.2.3",
        "--fixture",
        "critical",
    )
    stack.wait_for(lambda: _tags(stack, repository, bad) == [quarantine_tag], what="quarantine")
    table = stack.state()["outputs"]["AuditTableName"]
    item = stack.client("dynamodb").get_item(TableName=table, Key=audit_key(repository, bad))["Item"]
    assert item["status"]["S"] == "QUARANTINED"
    assert [t["S"] for t in item["original_tags"]["L"]] == ["v1.2.3"]

    # re-tagging the quarantined digest does not free it
    _push(stack, repository, "v1.2.3-again", tmp_path, "e2e-bad")
    stack.wait_for(lambda: _tags(stack, repository, bad) == [quarantine_tag], what="re-tag removed")

    # the same scan-complete event delivered twice acts once
    history_before = len(
        stack.client("dynamodb").get_item(TableName=table, Key=audit_key(repository, bad))["Item"]["history"]["L"]
    )
    scan_event = {
        "Source": "aws.inspector2",
        "DetailType": "Inspector2 Scan",
        "Detail": json.dumps(
            {
                "scan-status": "INITIAL_SCAN_COMPLETE",
                "repository-name": f"arn:aws:ecr:us-east-1:123456789012:repository/{repository}",
                "finding-severity-counts": {
                    "CRITICAL": 2,
                    "HIGH": 3,
                    "MEDIUM": 1,
                    "LOW": 0,
                    "INFORMATIONAL": 0,
                    "TOTAL": 6,
                },
                "image-digest": bad,
                "image-tags": [],
            }
        ),
    }
    before = len(stack.state()["invocations"])
    stack.aws("events", "put-events", "--entries", json.dumps([scan_event, scan_event]))
    stack.wait_for(lambda: len(stack.state()["invocations"]) >= before + 2, what="two deliveries")
    item = stack.client("dynamodb").get_item(TableName=table, Key=audit_key(repository, bad))["Item"]
    assert len(item["history"]["L"]) == history_before

    # a clean scan leaves tags untouched
    good = _push(stack, repository, "v1.2.4", tmp_path, "e2e-good")
    stack.cli(
        "scan",
        "--endpoint-url",
        stack.endpoint_url,
        "--repository",
        repository,
        "--tag",
        "v1.2.4",
        "--fixture",
        "clean",
    )
    stack.wait_for(
        lambda: (
            "PASSED"
            in json.dumps(
                stack.client("dynamodb").get_item(TableName=table, Key=audit_key(repository, good)).get("Item", {})
            )
        ),
        what="clean decision",
    )
    assert _tags(stack, repository, good) == ["v1.2.4"]


def test_audit_mode_changes_nothing(tmp_path: Path) -> None:
    audit = start_stack("--parameter", "Mode=audit")
    try:
        repository = "ses-base/audited"
        audit.aws("ecr", "create-repository", "--repository-name", repository)
        digest = _push(audit, repository, "v1", tmp_path, "audit-bad")
        audit.cli(
            "scan",
            "--endpoint-url",
            audit.endpoint_url,
            "--repository",
            repository,
            "--tag",
            "v1",
            "--fixture",
            "critical",
            "--scanner",
            "basic",
        )
        table = audit.state()["outputs"]["AuditTableName"]
        audit.wait_for(
            lambda: (
                "AUDITED"
                in json.dumps(
                    audit.client("dynamodb")
                    .get_item(TableName=table, Key=audit_key(repository, digest))
                    .get("Item", {})
                )
            ),
            what="audit decision",
        )
        assert _tags(audit, repository, digest) == ["v1"]
    finally:
        assert stop_stack(audit) == 0


def test_send_rejects_bad_files_with_one_line(tmp_path: Path) -> None:
    not_json = tmp_path / "event.json"
    not_json.write_text("{not json")
    result = run_cli("send", str(not_json), "--endpoint-url", "http://127.0.0.1:9", check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "not JSON" in result.stderr

    unknown = tmp_path / "unknown.json"
    unknown.write_text(
        json.dumps(
            json.loads((EVENTS / "ecr-image-action-push.json").read_text()) | {"detail-type": "ECR Replication Action"}
        )
    )
    result = run_cli("send", str(unknown), "--endpoint-url", "http://127.0.0.1:9", check=False)
    assert result.returncode == 2
    assert "unsupported event" in result.stderr
    assert str(unknown) in result.stderr


def test_unprovisionable_template_fails_cleanly(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text("Resources:\n  Thing:\n    Type: AWS::EC2::Instance\n    Properties: {}\n")
    port = free_port()
    result = run_cli("local", "--port", str(port), "--template", str(template), check=False)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "Thing" in result.stderr
    assert "AWS::EC2::Instance" in result.stderr
    import socket

    with socket.socket() as sock:  # nothing half-started is left holding the port
        sock.bind(("127.0.0.1", port))
