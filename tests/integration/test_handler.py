"""The deployed handler end to end in-process: real adapters against moto, env vars as the template sets them."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from ecr_warden import runtime
from ecr_warden.adapters import aws as aws_clients
from ecr_warden.adapters import policy_source
from tests.conftest import ROOT, load_event
from tests.integration.conftest import Env


class Context:
    function_name = "ecr-warden-dev-scan-gate"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ecr-warden-dev-scan-gate"
    aws_request_id = "test-request"


def _load_handler() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scan_gate_app", ROOT / "functions/scan_gate/app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def handler(aws: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    aws_clients.reset_clients()
    runtime.forget_policy_sources()
    for key, output in {
        "AUDIT_TABLE_NAME": "AuditTableName",
        "DECISION_BUS_NAME": "DecisionBusName",
        "POLICY_PARAMETER_NAME": "PolicyParameterName",
        "DEAD_LETTER_QUEUE_URL": "ScanGateDeadLetterQueueUrl",
    }.items():
        monkeypatch.setenv(key, aws.outputs[output])
    monkeypatch.setenv("WARDEN_MODE", "enforce")
    yield _load_handler().lambda_handler
    aws_clients.reset_clients()


def _dead_letters(aws: Env) -> list[dict[str, Any]]:
    response = aws.clients["sqs"].receive_message(
        QueueUrl=aws.outputs["ScanGateDeadLetterQueueUrl"], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return [json.loads(m["Body"]) for m in response.get("Messages", [])]


def test_malformed_event_goes_to_the_dlq_and_changes_nothing(aws: Env, handler: Any) -> None:
    raw = load_event("inspector2-scan-critical.json")
    raw["detail"]["image-digest"] = "sha256:short"
    result = handler(raw, Context())
    assert result["status"] == "rejected"
    assert "detail.image-digest" in result["error"]
    [parked] = _dead_letters(aws)
    assert parked["error_type"] == "EventValidationError"
    assert parked["event"] == raw
    assert aws.clients["dynamodb"].scan(TableName=aws.outputs["AuditTableName"])["Count"] == 0


def test_unhandled_detail_type_goes_to_the_dlq(aws: Env, handler: Any) -> None:
    result = handler(load_event("cloudtrail-create-repository.json"), Context())
    assert result["status"] == "rejected"
    assert _dead_letters(aws)[0]["error_type"] == "UnsupportedEventError"


def test_sample_clean_scan_is_recorded(aws: Env, handler: Any) -> None:
    aws.create_repository()
    raw = load_event("inspector2-scan-clean.json")
    assert handler(raw, Context())["action"] == "passed"


def test_invalid_policy_keeps_the_last_valid_one(aws: Env, handler: Any, caplog: pytest.LogCaptureFixture) -> None:
    ssm = aws.clients["ssm"]
    name = aws.outputs["PolicyParameterName"]
    source = policy_source.SsmPolicySource(name)
    good = source.get()
    ssm.put_parameter(Name=name, Value='{"version": 1, "rules": []}', Type="String", Overwrite=True)
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    assert source.get() == good
    assert source.get() == good
    rejected = [r for r in caplog.records if r.getMessage().startswith("policy rejected")]
    assert len(rejected) == 1  # reported once per bad version, not per event


@pytest.mark.parametrize(
    "name", ["inspector2-scan-ec2.json", "inspector2-scan-lambda.json", "inspector2-finding-lambda.json"]
)
def test_events_about_other_resources_are_ignored_without_a_dead_letter(aws: Env, handler: Any, name: str) -> None:
    result = handler(load_event(name), Context())
    assert result["status"] == "ignored"
    assert "not an ECR image" in result["reason"]
    assert _dead_letters(aws) == []
    assert aws.counter.calls["ecr:DescribeImages"] == 0
