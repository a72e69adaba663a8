"""README: SNS is published once, and each Slack route gets its message once, even when something after a
delivery fails and Lambda runs the event again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ecr_warden.adapters.dead_letter import SqsDeadLetter
from ecr_warden.adapters.follow_up import SqsFollowUps
from ecr_warden.adapters.notify_state import DynamoNotifyState
from tests.conftest import load_event
from tests.integration.conftest import Env
from tests.integration.slack_server import ScriptedSlack, scripted_slack
from tests.integration.test_notifier import _drain, _inbox
from tests.integration.test_notifier_handler import Context, handler, slack

__all__ = ["handler", "slack"]  # fixtures

PLATFORM_SECRET = "ecr-warden/dev/slack-platform"


@pytest.fixture
def platform(aws: Env) -> Iterator[ScriptedSlack]:
    with scripted_slack() as server:
        aws.clients.setdefault("secretsmanager", __import__("boto3").client("secretsmanager", region_name="us-east-1"))
        aws.clients["secretsmanager"].create_secret(Name=PLATFORM_SECRET, SecretString=json.dumps({"url": server.url}))
        policy = {
            "rules": [{"name": "default"}],
            "notifications": {
                "routes": [
                    {"name": "platform", "repositories": ["ses-base/*"], "webhook_secret": PLATFORM_SECRET},
                    {"name": "everyone", "repositories": ["*"]},
                ]
            },
        }
        aws.clients["ssm"].put_parameter(
            Name=aws.outputs["PolicyParameterName"], Value=json.dumps(policy), Type="String", Overwrite=True
        )
        yield server


def _fail_once(monkeypatch: pytest.MonkeyPatch, cls: type, method: str, when: Any) -> list[str]:
    """Make cls.method raise the first time `when(*args)` holds; returns a log of the injected failures."""
    real = getattr(cls, method)
    failed: list[str] = []

    def flaky(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not failed and when(*args, **kwargs):
            failed.append(method)
            raise RuntimeError(f"injected: {method} failed")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, method, flaky)
    return failed


FAILURES = {
    # the second route's send slot (DynamoDB), after SNS and the first route went out
    "slot-of-second-route": (DynamoNotifyState, "reserve_slot", lambda webhook, *_: webhook == "default"),
    # the first route's send slot, after SNS went out
    "slot-of-first-route": (DynamoNotifyState, "reserve_slot", lambda webhook, *_: webhook == PLATFORM_SECRET),
    # deferring a far slot to the queue (SQS)
    "defer": (SqsFollowUps, "defer", lambda *_a, **_k: True),
    # parking a failed Slack message (SQS)
    "park": (SqsDeadLetter, "send", lambda *_a, **_k: True),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_retry_after_a_failure_sends_only_what_did_not_go_out(
    aws: Env,
    handler: Any,
    slack: ScriptedSlack,
    platform: ScriptedSlack,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    inbox = _inbox(aws)
    cls, method, when = FAILURES[failure]
    if failure == "defer":  # the second route's next slot is far away: it waits on the queue
        aws.clients["dynamodb"].put_item(
            TableName=aws.outputs["NotifyStateTableName"],
            Item={"key": {"S": "rate#default"}, "next_at": {"N": str(__import__("time").time() + 120)}},
        )
    if failure == "park":  # the second route's webhook is gone: its message is parked
        aws.clients["secretsmanager"].put_secret_value(
            SecretId=aws.outputs["SlackWebhookSecretArn"], SecretString=json.dumps({"url": "https://bad host"})
        )
    failed = _fail_once(monkeypatch, cls, method, when)
    event = load_event("ecr-warden-decision-quarantined.json")
    with pytest.raises(RuntimeError, match="injected"):
        handler(event, Context())
    assert failed == [method]
    assert handler(event, Context()) == {"status": "ok", "result": "notified"}  # Lambda's retry of the event
    assert handler(event, Context())["result"] == "duplicate decision: already notified"
    assert len(_drain(aws, inbox)) == 1  # SNS: once
    assert len(platform.delivered) == 1
    if failure in ("slot-of-first-route", "slot-of-second-route"):
        assert len(slack.delivered) == 1
