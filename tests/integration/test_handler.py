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
from ecr_warden.gate import entry
from tests.conftest import ROOT, load_event
from tests.integration.conftest import REPOSITORY, Env


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
        "DELAYED_CHECKS_QUEUE_URL": "DelayedChecksQueueUrl",
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


def _sqs_records(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ecr-warden-dev-delayed-checks",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def test_lagging_findings_wait_on_the_delayed_check_queue_and_are_decided_when_listed(aws: Env, handler: Any) -> None:
    from tests.integration.test_scan_gate import CRITICAL

    aws.create_repository()
    digest = aws.push("v1", "lagging")
    raw = load_event("inspector2-scan-critical.json")
    raw["detail"].update({"image-digest": digest, "image-tags": ["v1"]})
    result = handler(raw, Context())  # the deployed handler: real adapters, the template's queue
    assert result["action"] == "findings_lagging"
    sqs = aws.clients["sqs"]
    queue = aws.outputs["DelayedChecksQueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"

    check = json.loads(_queued_body(aws))
    assert (check["kind"], check["counts"]) == ("findings", {"CRITICAL": 2, "HIGH": 3, "MEDIUM": 8})
    check["not_before"] = "2000-01-01T00:00:00Z"  # delivered when due
    second = CRITICAL[0].model_copy(update={"id": "CVE-2026-0002"})
    aws.enhanced.findings[(REPOSITORY, digest)] = [*CRITICAL, second]  # both counted CRITICALs are listed now
    # The handler's own Inspector adapter talks to moto, whose ListFindings ignores filters; serve the findings
    # through the gate's port instead, as the other handler tests do.
    entry_gate_factory = _factory_with_fake_findings(aws)
    outcome = entry.process(_sqs_records(json.dumps(check), "not json"), _settings(aws), entry_gate_factory)
    assert outcome == {"batchItemFailures": []}  # the bad message is parked, not retried
    assert [d["action"] for d in aws.decisions()] == ["quarantined"]
    [parked] = _dead_letters(aws)
    assert parked["error_type"] == "PermanentError"


def _queued_body(aws: Env) -> str:
    from moto.sqs.models import sqs_backends

    queue = sqs_backends["123456789012"]["us-east-1"].queues["ecr-warden-dev-delayed-checks"]
    return str(queue._messages[0].body)


def _settings(aws: Env) -> Any:
    from ecr_warden.settings import GateSettings

    return GateSettings(
        audit_table_name=aws.outputs["AuditTableName"],
        decision_bus_name=aws.outputs["DecisionBusName"],
        delayed_checks_queue_url=aws.outputs["DelayedChecksQueueUrl"],
        dead_letter_queue_url=aws.outputs["ScanGateDeadLetterQueueUrl"],
        policy_parameter_name=aws.outputs["PolicyParameterName"],
    )


def _factory_with_fake_findings(aws: Env) -> Any:
    def factory(settings: Any, account: str) -> Any:
        gate = entry.build_gate(settings, account)
        gate.ports.enhanced = aws.enhanced
        return gate

    return factory


class _FailingSsm:
    """Powertools' provider as it fails: GetParameterError raised while handling the SDK's ClientError."""

    def __init__(self, code: str) -> None:
        self.code = code

    def get(self, name: str, **_: Any) -> str:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
        from botocore.exceptions import ClientError

        try:
            raise ClientError({"Error": {"Code": self.code, "Message": "injected"}}, "GetParameter")
        except ClientError as exc:
            raise GetParameterError(str(exc))  # noqa: B904 - exactly what Powertools does


def test_a_throttled_policy_read_at_cold_start_is_retried_not_parked(
    aws: Env, handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecr_warden.errors import TransientError

    monkeypatch.setattr(policy_source, "ssm_provider", lambda: _FailingSsm("ThrottlingException"))
    with pytest.raises(TransientError, match="unreadable for now"):  # Lambda retries the event
        handler(load_event("inspector2-scan-clean.json"), Context())
    assert _dead_letters(aws) == []


def test_a_missing_policy_parameter_is_a_configuration_error(
    aws: Env, handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(policy_source, "ssm_provider", lambda: _FailingSsm("ParameterNotFound"))
    result = handler(load_event("inspector2-scan-clean.json"), Context())
    assert result["status"] == "rejected"
    assert [parked["error_type"] for parked in _dead_letters(aws)] == ["ConfigurationError"]
