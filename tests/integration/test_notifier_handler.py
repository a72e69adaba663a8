"""The notifier's handler in-process with real adapters against moto and a real HTTP Slack."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from typing import Any

import pytest

from ecr_warden import runtime
from ecr_warden.adapters import aws as aws_clients
from ecr_warden.notify import service
from tests.conftest import ROOT, load_event
from tests.integration.conftest import Env
from tests.integration.slack_server import ScriptedSlack, scripted_slack


class Context:
    function_name = "ecr-warden-dev-notifier"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ecr-warden-dev-notifier"
    aws_request_id = "test-request"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


@pytest.fixture
def slack() -> Iterator[ScriptedSlack]:
    with scripted_slack() as server:
        yield server


@pytest.fixture
def handler(aws: Env, slack: ScriptedSlack, monkeypatch: pytest.MonkeyPatch) -> Any:
    from aws_lambda_powertools.utilities import parameters

    aws_clients.reset_clients()
    runtime.forget_policy_sources()
    parameters.clear_caches()
    service._reported_routes.clear()
    secrets = aws_clients.client("secretsmanager")
    secrets.put_secret_value(SecretId=aws.outputs["SlackWebhookSecretArn"], SecretString=json.dumps({"url": slack.url}))
    sqs = aws.clients["sqs"]
    env = {
        "DECISIONS_TOPIC_ARN": aws.outputs["DecisionsTopicArn"],
        "SLACK_WEBHOOK_SECRET_ARN": aws.outputs["SlackWebhookSecretArn"],
        "NOTIFY_STATE_TABLE_NAME": aws.outputs["NotifyStateTableName"],
        "FOLLOW_UP_QUEUE_URL": sqs.get_queue_url(QueueName="ecr-warden-dev-follow-ups")["QueueUrl"],
        "SLACK_DEAD_LETTER_QUEUE_URL": aws.outputs["SlackDeadLetterQueueUrl"],
        "DEAD_LETTER_QUEUE_URL": aws.outputs["NotifierDeadLetterQueueUrl"],
        "POLICY_PARAMETER_NAME": aws.outputs["PolicyParameterName"],
        "POWERTOOLS_SERVICE_NAME": "notifier",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location("notifier_app", ROOT / "functions/notifier/app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module.lambda_handler
    aws_clients.reset_clients()


def test_decision_event_is_notified(aws: Env, handler: Any, slack: ScriptedSlack) -> None:
    result = handler(load_event("ecr-warden-decision-quarantined.json"), Context())
    assert result == {"status": "ok", "result": "notified"}
    assert len(slack.delivered) == 1


def test_unknown_schema_version_goes_to_the_dlq_without_a_message(aws: Env, handler: Any, slack: ScriptedSlack) -> None:
    raw = load_event("ecr-warden-decision-quarantined.json")
    raw["detail"]["schema_version"] = "2.0"
    assert handler(raw, Context())["status"] == "rejected"
    raw2 = load_event("ecr-warden-decision-quarantined.json")
    del raw2["detail"]["repository"]
    assert handler(raw2, Context())["status"] == "rejected"
    assert slack.received == []
    parked = aws.clients["sqs"].receive_message(
        QueueUrl=aws.outputs["NotifierDeadLetterQueueUrl"], MaxNumberOfMessages=10
    )["Messages"]
    assert len(parked) == 2


def test_follow_up_batch_flushes_with_partial_failure_reporting(aws: Env, handler: Any, slack: ScriptedSlack) -> None:
    records = [
        {
            "messageId": "m1",
            "receiptHandle": "r1",
            "body": json.dumps({"repository": "a/b", "digest": "x"}),
            "attributes": {},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ecr-warden-dev-follow-ups",
            "awsRegion": "us-east-1",
        },
        {
            "messageId": "m2",
            "receiptHandle": "r2",
            "body": "not json",
            "attributes": {},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ecr-warden-dev-follow-ups",
            "awsRegion": "us-east-1",
        },
    ]
    result = handler({"Records": records}, Context())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}


@pytest.mark.parametrize(
    ("field", "value"),
    [("region", "evil.example/login?x="), ("account", "<!channel>"), ("repository", "a/<!here>"), ("digest", "x y")],
)
def test_a_forged_decision_goes_to_the_dlq_without_a_message(
    aws: Env, handler: Any, slack: ScriptedSlack, field: str, value: str
) -> None:
    raw = load_event("ecr-warden-decision-quarantined.json")
    raw["detail"][field] = value
    assert handler(raw, Context())["status"] == "rejected"
    assert slack.received == []
    parked = aws.clients["sqs"].receive_message(
        QueueUrl=aws.outputs["NotifierDeadLetterQueueUrl"], MaxNumberOfMessages=10
    )["Messages"]
    assert len(parked) == 1
