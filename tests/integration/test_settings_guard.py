"""The settings guard's handler in-process: real adapters against moto (provisioned from template.yaml), the
environment as the template sets it. The issue's "done when", without the network: a plain create-repository
ends as the policy says, drift is undone, the KMS gap is reported, infrastructure as code is left alone, its own
calls start no second round, audit mode changes nothing, and a reconcile run covers every managed repository."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from typing import Any

import pytest

from ecr_warden import runtime
from ecr_warden.adapters import aws as aws_clients
from ecr_warden.repository_settings.desired import NONCOMPLIANT_TAG
from ecr_warden_tools.local.provision import local_role_arn
from tests.conftest import ROOT, load_event
from tests.events import ACCOUNT
from tests.integration.conftest import Env

REPO = "ses-base/scratchpad"
OWN_ROLE = local_role_arn(ACCOUNT, "SettingsGuardFunctionRole")


class Context:
    function_name = "ecr-warden-dev-settings-guard"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:ecr-warden-dev-settings-guard"
    aws_request_id = "test-request"


def _handler(mode: str, monkeypatch: pytest.MonkeyPatch, aws: Env) -> Any:
    aws_clients.reset_clients()
    runtime.forget_policy_sources()
    for key, output in {
        "AUDIT_TABLE_NAME": "AuditTableName",
        "DECISION_BUS_NAME": "DecisionBusName",
        "POLICY_PARAMETER_NAME": "PolicyParameterName",
        "DEAD_LETTER_QUEUE_URL": "SettingsGuardDeadLetterQueueUrl",
        "RECONCILE_QUEUE_URL": "SettingsReconcileQueueUrl",
    }.items():
        monkeypatch.setenv(key, aws.outputs[output])
    monkeypatch.setenv("WARDEN_MODE", mode)
    monkeypatch.setenv("OWN_ROLE_ARNS", OWN_ROLE)
    for service in ("ecr", "kms"):  # the handler's own clients count too
        aws.counter.attach(aws_clients.client(service))
    spec = importlib.util.spec_from_file_location("settings_guard_app", ROOT / "functions/settings_guard/app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


@pytest.fixture
def handler(aws: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield _handler("enforce", monkeypatch, aws)
    aws_clients.reset_clients()


def event(name: str = "cloudtrail-create-repository-defaults.json", repository: str = REPO, **detail: Any) -> Any:
    raw = load_event(name)
    raw["detail"]["requestParameters"] = {
        **(raw["detail"].get("requestParameters") or {}),
        "repositoryName": repository,
    }
    raw["detail"]["eventID"] = f"{name}-{repository}-{sorted(detail)}"
    raw["detail"].update(detail)
    return raw


def settings_of(aws: Env, name: str = REPO) -> dict[str, Any]:
    ecr = aws.ecr
    repo = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    tags = {t["Key"]: t["Value"] for t in ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]}
    try:
        rules = json.loads(ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])["rules"]
    except ecr.exceptions.LifecyclePolicyNotFoundException:
        rules = None
    try:
        policy = json.loads(ecr.get_repository_policy(repositoryName=name)["policyText"])
    except ecr.exceptions.RepositoryPolicyNotFoundException:
        policy = None
    return {
        "mutability": repo["imageTagMutability"],
        "tags": tags,
        "rules": rules,
        "policy": policy,
        "encryption": repo["encryptionConfiguration"]["encryptionType"],
    }


def ecr_writes(aws: Env) -> int:
    writes = (
        "PutImageTagMutability",
        "PutLifecyclePolicy",
        "SetRepositoryPolicy",
        "TagResource",
        "PutRegistryScanningConfiguration",
        "DeleteLifecyclePolicy",
        "CreateRepository",
    )
    return sum(n for call, n in aws.counter.calls.items() if call.split(":")[1] in writes)


def test_plain_create_repository_ends_with_the_policy_settings(aws: Env, handler: Any) -> None:
    aws.ecr.create_repository(repositoryName=REPO)
    aws.counter.calls.clear()
    result = handler(event(), Context())
    assert ecr_writes(aws) == 5  # mutability, tags, policy, lifecycle, the KMS report tag: only what differs
    assert result["result"] == "enforced"
    now = settings_of(aws)
    assert now["mutability"] == "IMMUTABLE"
    assert len(now["rules"]) == 5
    assert now["rules"][-1]["selection"]["tagPrefixList"] == ["quarantined-"]
    assert {"Project": "ses-base", "Environment": "unassigned", "ManagedBy": "ecr-warden"}.items() <= now[
        "tags"
    ].items()
    assert [s["Sid"] for s in now["policy"]["Statement"]] == ["EcrWardenDenyPublicAccess"]
    assert now["encryption"] == "AES256"
    assert now["tags"][NONCOMPLIANT_TAG] == "encryption"
    (decision,) = aws.decisions()
    assert decision["action"] == "settings_enforced"
    assert decision["subject"] == "repository"
    assert "digest" not in decision
    assert decision["schema_version"] == "1.2"
    items = aws.clients["dynamodb"].scan(TableName=aws.outputs["AuditTableName"])["Items"]
    assert {i["status"]["S"] for i in items} >= {"SETTINGS_DONE"}


def test_drift_is_undone(aws: Env, handler: Any) -> None:
    aws.ecr.create_repository(repositoryName=REPO)
    handler(event(), Context())
    aws.counter.calls.clear()
    assert handler(event("cloudtrail-put-image-tag-mutability.json"), Context())["result"] == "known"
    assert ecr_writes(aws) == 0  # compliant but for the KMS gap, already reported: nothing written
    aws.ecr.delete_lifecycle_policy(repositoryName=REPO)
    assert (
        handler(event("cloudtrail-put-lifecycle-policy.json", eventName="DeleteLifecyclePolicy"), Context())["result"]
        == "enforced"
    )
    aws.ecr.put_image_tag_mutability(repositoryName=REPO, imageTagMutability="MUTABLE")
    assert handler(event("cloudtrail-put-image-tag-mutability.json"), Context())["result"] == "enforced"
    now = settings_of(aws)
    assert now["mutability"] == "IMMUTABLE"
    assert len(now["rules"]) == 5


def test_own_calls_start_no_second_round(aws: Env, handler: Any) -> None:
    aws.ecr.create_repository(repositoryName=REPO)
    own = event("cloudtrail-put-image-tag-mutability.json")
    own["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = OWN_ROLE
    aws.counter.calls.clear()
    assert handler(own, Context())["result"] == "ignored"
    assert aws.counter.total == 0


def test_cloudformation_managed_repository_is_reported_not_changed(aws: Env, handler: Any) -> None:
    aws.ecr.create_repository(repositoryName=REPO, tags=[{"Key": "aws:cloudformation:stack-name", "Value": "team"}])
    before = settings_of(aws)
    aws.counter.calls.clear()
    assert handler(event(), Context())["result"] == "reported"
    assert settings_of(aws) == before
    assert ecr_writes(aws) == 0
    (decision,) = aws.decisions()
    assert decision["action"] == "settings_reported"
    assert any("CloudFormation stack team" in r for r in decision["reasons"])


def test_audit_mode_changes_nothing(aws: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    audit = _handler("audit", monkeypatch, aws)
    aws.ecr.create_repository(repositoryName=REPO)
    before = settings_of(aws)
    aws.counter.calls.clear()
    assert audit(event(), Context())["result"] == "would_enforce"
    assert settings_of(aws) == before
    assert ecr_writes(aws) == 0
    assert aws.decisions()[0]["action"] == "would_enforce_settings"


def test_deleted_repository_is_skipped_and_recorded_once(aws: Env, handler: Any) -> None:
    assert handler(event(repository="ses-base/gone"), Context())["result"] == "skipped"
    assert handler(event(repository="ses-base/gone"), Context())["result"] == "duplicate"
    items = aws.clients["dynamodb"].scan(TableName=aws.outputs["AuditTableName"])["Items"]
    assert [i["status"]["S"] for i in items] == ["SETTINGS_SKIPPED"]


def test_malformed_event_is_parked_once(aws: Env, handler: Any) -> None:
    raw = event(repository="../../etc/passwd")
    assert handler(raw, Context())["status"] == "rejected"
    parked = aws.clients["sqs"].receive_message(QueueUrl=aws.outputs["SettingsGuardDeadLetterQueueUrl"])["Messages"]
    assert json.loads(parked[0]["Body"])["error_type"] == "EventValidationError"
    assert ecr_writes(aws) == 0


def _sqs_event(bodies: list[str]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": str(n),
                "receiptHandle": "r",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:{ACCOUNT}:q",
                "awsRegion": "us-east-1",
            }
            for n, body in enumerate(bodies)
        ]
    }


def test_reconcile_covers_every_managed_repository_and_nothing_else(aws: Env, handler: Any) -> None:
    policy = json.loads(aws.clients["ssm"].get_parameter(Name=aws.outputs["PolicyParameterName"])["Parameter"]["Value"])
    policy["repository_settings"]["profiles"][0]["repositories"] = ["ses-base/*"]
    aws.clients["ssm"].put_parameter(Name=aws.outputs["PolicyParameterName"], Value=json.dumps(policy), Overwrite=True)
    runtime.forget_policy_sources()
    for n in range(30):
        aws.ecr.create_repository(repositoryName=f"ses-base/app-{n:02d}")
    aws.ecr.create_repository(repositoryName="other/app")
    started = handler({"ecr-warden": "reconcile", "account": ACCOUNT, "execution_id": "run-1"}, Context())
    assert started["result"] == "fanned_out"
    sqs, url = aws.clients["sqs"], aws.outputs["SettingsReconcileQueueUrl"]
    bodies = [
        m["Body"]
        for _ in range(5)
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    ]
    assert len(bodies) == 2
    assert handler(_sqs_event(bodies), Context()) == {"batchItemFailures": []}
    assert all(settings_of(aws, f"ses-base/app-{n:02d}")["mutability"] == "IMMUTABLE" for n in range(30))
    assert settings_of(aws, "other/app")["mutability"] == "MUTABLE"
