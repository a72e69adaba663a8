"""The notifier against moto (SNS, SQS, DynamoDB, Secrets Manager from template.yaml) and a real HTTP Slack."""

from __future__ import annotations

import itertools
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecr_warden.adapters.dead_letter import SqsDeadLetter
from ecr_warden.adapters.follow_up import SqsFollowUps
from ecr_warden.adapters.notify_state import DynamoNotifyState
from ecr_warden.adapters.slack import SlackWebhooks
from ecr_warden.adapters.sns import SnsPublisher
from ecr_warden.contracts.decision import Action
from ecr_warden.notify import service
from ecr_warden.notify.service import Notifier
from ecr_warden.policy.load import parse_policy
from ecr_warden.policy.model import Policy
from tests.integration.conftest import Env
from tests.integration.slack_server import Answer, ScriptedSlack, scripted_slack
from tests.unit.test_message import decision


def message_of(detail: Any) -> dict[str, Any]:
    from ecr_warden.notify.message import slack_message

    return slack_message(detail)


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 27, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture(autouse=True)
def _fresh_secret_cache() -> None:
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    service._reported_routes.clear()


def _inbox(aws: Env) -> str:
    sqs, sns = (
        aws.clients["sqs"],
        aws.clients.setdefault("sns", aws.counter.attach(__import__("boto3").client("sns", region_name="us-east-1"))),
    )
    url = sqs.create_queue(QueueName="sns-inbox")["QueueUrl"]
    sns.subscribe(
        TopicArn=aws.outputs["DecisionsTopicArn"],
        Protocol="sqs",
        Endpoint="arn:aws:sqs:us-east-1:123456789012:sns-inbox",
    )
    return str(url)


def _drain(aws: Env, url: str) -> list[dict[str, Any]]:
    found = []
    while messages := aws.clients["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for m in messages:
            found.append(json.loads(m["Body"]))
            aws.clients["sqs"].delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return found


def notifier(
    aws: Env,
    slack: ScriptedSlack,
    policy: Policy | None = None,
    clock: Clock | None = None,
    sleep: Any = lambda _s: None,
) -> Notifier:
    import boto3

    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.put_secret_value(SecretId=aws.outputs["SlackWebhookSecretArn"], SecretString=json.dumps({"url": slack.url}))
    sqs = aws.clients["sqs"]
    follow_up_url = sqs.get_queue_url(QueueName="ecr-warden-dev-follow-ups")["QueueUrl"]
    return Notifier(
        policy=policy or parse_policy(json.dumps({"rules": [{"name": "r"}]})),
        state=DynamoNotifyState("ecr-warden-dev-notify-state", aws.clients["dynamodb"]),
        slack=SlackWebhooks(aws.outputs["SlackWebhookSecretArn"]),
        sns=SnsPublisher(aws.outputs["DecisionsTopicArn"], boto3.client("sns", region_name="us-east-1")),
        follow_ups=SqsFollowUps(follow_up_url, sqs),
        slack_dead_letter=SqsDeadLetter(aws.outputs["SlackDeadLetterQueueUrl"], sqs),
        now=clock or Clock(),
        sleep=sleep,
    )


def _queue_messages(aws: Env, output_or_name: str) -> list[dict[str, Any]]:
    sqs = aws.clients["sqs"]
    url = aws.outputs.get(output_or_name) or sqs.get_queue_url(QueueName=output_or_name)["QueueUrl"]
    response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])
    return [json.loads(m["Body"]) for m in response.get("Messages", [])]


def test_quarantine_gives_one_slack_and_one_sns_message(aws: Env) -> None:
    inbox = _inbox(aws)
    with scripted_slack() as slack:
        n = notifier(aws, slack)
        assert n.on_decision(decision()) == "notified"
        assert n.on_decision(decision()) == "duplicate decision: already notified"
    assert len(slack.delivered) == 1
    assert slack.delivered[0]["blocks"][0]["type"] == "header"
    [sns] = _drain(aws, inbox)
    assert sns["Subject"].startswith("[ecr-warden] Quarantined")
    assert {k: v["Value"] for k, v in sns["MessageAttributes"].items()} == {
        "severity": "CRITICAL",
        "action": "quarantined",
        "repository": "ses-base/api-server",
        "account": "123456789012",
        "region": "us-east-1",
        "environment": "prod",
    }


def test_flood_gives_one_message_now_and_one_follow_up(aws: Env) -> None:
    inbox = _inbox(aws)
    clock = Clock()
    with scripted_slack() as slack:
        n = notifier(aws, slack, clock=clock)
        n.on_decision(decision())
        for i in range(49):
            clock.at += timedelta(seconds=1)
            update = decision(
                action=Action.UPDATED,
                decision_id=f"u{i}",
                fingerprint=f"{i:032d}",
                reasons=[f"new finding CVE-2026-{i}"],
            )
            n.on_decision(update)
            n.on_decision(update)  # EventBridge delivers at least once
        assert len(slack.delivered) == 1
        sqs = aws.clients["sqs"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=sqs.get_queue_url(QueueName="ecr-warden-dev-follow-ups")["QueueUrl"],
            AttributeNames=["ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessages"],
        )["Attributes"]
        # one flush, delayed until the window closes, not one per update
        assert attributes == {"ApproximateNumberOfMessagesDelayed": "1", "ApproximateNumberOfMessages": "0"}
        image = decision()
        assert n.on_window_closed(service.image_key(image)) == "follow-up with 49 update(s)"
        assert n.on_window_closed(service.image_key(image)) == "nothing pending"
    assert len(slack.delivered) == 2
    assert "(49 updates)" in slack.delivered[1]["blocks"][0]["text"]["text"]
    assert len(_drain(aws, inbox)) == 2


def test_update_after_the_window_goes_out_at_once(aws: Env) -> None:
    clock = Clock()
    with scripted_slack() as slack:
        n = notifier(aws, slack, clock=clock)
        n.on_decision(decision())
        clock.at += timedelta(minutes=6)
        assert n.on_decision(decision(action=Action.UPDATED, fingerprint="9" * 32)) == "notified"
    assert len(slack.delivered) == 2


def test_429_then_200_is_delivered_once_after_retry_after(aws: Env) -> None:
    with scripted_slack(Answer(429, "rate_limited", retry_after=1)) as slack:
        started = time.monotonic()
        notifier(aws, slack).on_decision(decision())
        elapsed = time.monotonic() - started
    assert len(slack.received) == 2  # the 429 and the successful retry
    assert slack.received[1][0] - slack.received[0][0] >= 1.0
    assert elapsed >= 1.0
    assert _queue_messages(aws, "SlackDeadLetterQueueUrl") == []


def test_slack_down_parks_the_message_and_sns_still_goes_once(aws: Env) -> None:
    inbox = _inbox(aws)
    with scripted_slack(*[Answer(503, "unavailable")] * 10) as slack:
        notifier(aws, slack).on_decision(decision())
    assert len(slack.received) == 4  # first try + 3 retries with backoff
    [parked] = _queue_messages(aws, "SlackDeadLetterQueueUrl")
    assert parked["error_type"] == "SlackDeliveryError"
    assert parked["event"]["message"]["blocks"]
    assert len(_drain(aws, inbox)) == 1


def test_parked_message_can_be_redriven(aws: Env) -> None:
    with scripted_slack(*[Answer(500, "oops")] * 4) as slack:
        n = notifier(aws, slack)
        n.on_decision(decision())
        [parked] = _queue_messages(aws, "SlackDeadLetterQueueUrl")
        assert n.redrive(parked) is True
    assert len(slack.delivered) == 5


@pytest.mark.parametrize(("status", "body"), [(404, "no_service"), (403, "invalid_token"), (404, "channel_not_found")])
def test_misconfigured_webhook_is_reported_once_not_retried(
    aws: Env, status: int, body: str, caplog: pytest.LogCaptureFixture
) -> None:
    with scripted_slack(*[Answer(status, body)] * 5) as slack:
        n = notifier(aws, slack)
        n.on_decision(decision())
        n.on_decision(decision(digest="sha256:" + "d" * 64))
    assert len(slack.received) == 2  # one attempt per message, no retries
    errors = [r for r in caplog.records if r.getMessage() == "slack route misconfigured"]
    assert len(errors) == 1
    assert "default" in json.dumps(errors[0].__dict__.get("route", "")) or "route" in errors[0].__dict__


def test_webhook_url_never_appears_in_logs(
    aws: Env, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    with scripted_slack(Answer(429, "rate_limited", retry_after=0), *[Answer(404, "no_service")] * 3) as slack:
        n = notifier(aws, slack)
        n.on_decision(decision())
        n.on_decision(decision(digest="sha256:" + "e" * 64))
        url = slack.url
    out, err = capfd.readouterr()
    logged = "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records) + out + err
    assert "secret-token-XYZ" not in logged
    assert url not in logged
    for parked in _queue_messages(aws, "SlackDeadLetterQueueUrl"):
        assert "secret-token-XYZ" not in json.dumps(parked)


def test_routes_by_repository_and_minimum_severity(aws: Env) -> None:
    import boto3

    with scripted_slack() as platform, scripted_slack() as everyone:
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        secrets.create_secret(Name="ecr-warden/dev/slack-platform", SecretString=json.dumps({"url": platform.url}))
        policy = parse_policy(
            json.dumps(
                {
                    "rules": [{"name": "r"}],
                    "notifications": {
                        "routes": [
                            {
                                "name": "platform",
                                "repositories": ["ses-base/*"],
                                "webhook_secret": "ecr-warden/dev/slack-platform",
                                "min_severity": "CRITICAL",
                            },
                            {"name": "everyone", "repositories": ["*"]},
                        ]
                    },
                }
            )
        )
        n = notifier(aws, everyone, policy)
        n.on_decision(decision())
        n.on_decision(
            decision(
                digest="sha256:" + "1" * 64,
                severity_counts={"HIGH": 1},
                top_findings=[],
                action="tagged",
                status="TAGGED",
                verdict="TAG",
            )
        )
        n.on_decision(decision(repository="other/app", digest="sha256:" + "2" * 64))
    assert len(platform.delivered) == 1
    assert len(everyone.delivered) == 3


def test_slack_is_held_to_one_message_per_second(aws: Env) -> None:
    with scripted_slack() as slack:
        n = notifier(aws, slack, sleep=time.sleep)
        for i in range(4):
            n.on_decision(decision(digest=f"sha256:{i:064d}"))
    times = [t for t, _ in slack.received]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times)), times


def test_passed_decisions_send_nothing(aws: Env) -> None:
    with scripted_slack() as slack:
        result = notifier(aws, slack).on_decision(decision(action="passed", status="PASSED", verdict="PASS"))
    assert result == "no message for passed"
    assert slack.received == []


def test_admin_redrive_sends_parked_messages_and_empties_the_queue(aws: Env) -> None:
    from ecr_warden.adapters import aws as aws_clients
    from ecr_warden_tools import admin

    aws_clients.reset_clients()
    with scripted_slack(*[Answer(503, "down")] * 4) as slack:
        notifier(aws, slack).on_decision(decision())
        sent, failed = admin.redrive_slack(admin.Deployment("dev", "us-east-1"))
    assert (sent, failed) == (1, 0)
    assert len(slack.delivered) == 5  # four 503 answers, then the redriven message
    assert _queue_messages(aws, "SlackDeadLetterQueueUrl") == []


def test_a_failed_delivery_is_unclaimed_so_the_retry_sends_it(aws: Env) -> None:
    with scripted_slack() as slack:
        n = notifier(aws, slack)

        class BrokenSns:
            def publish(self, *args: Any, **kwargs: Any) -> None:
                raise RuntimeError("SNS throttled beyond retries")

        real_sns, n.sns = n.sns, BrokenSns()  # type: ignore[assignment]
        with pytest.raises(RuntimeError):
            n.on_decision(decision())
        n.sns = real_sns
        assert n.on_decision(decision()) == "notified"  # Lambda's retry of the event
    assert len(slack.delivered) == 1


def test_a_far_slot_is_deferred_through_the_queue_not_slept(aws: Env) -> None:
    slept: list[float] = []
    with scripted_slack() as slack:
        n = notifier(aws, slack, sleep=slept.append)
        table = aws.clients["dynamodb"]
        table.put_item(
            TableName="ecr-warden-dev-notify-state",
            Item={"key": {"S": "rate#default"}, "next_at": {"N": str(time.time() + 120)}},
        )
        n.on_decision(decision())
        assert slack.delivered == []
        assert all(s <= service.MAX_WAIT_SECONDS for s in slept)
        sqs = aws.clients["sqs"]
        url = sqs.get_queue_url(QueueName="ecr-warden-dev-follow-ups")["QueueUrl"]
        delayed = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
        assert delayed["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
        # when the message comes off the queue, it is sent at its slot without reserving another
        body = {
            "route": {"name": "default"},
            "message": message_of(decision()),
            "decision_id": "d-1",
            "not_before": time.time(),
        }
        assert n.send_deferred(body) is True
    assert len(slack.delivered) == 1


def test_lifecycle_messages_repeat_when_the_lifecycle_does(aws: Env) -> None:
    with scripted_slack() as slack:
        n = notifier(aws, slack)
        compliant = {"action": "now_compliant", "verdict": "PASS", "fingerprint": "p" * 32}
        assert n.on_decision(decision(decision_id="a", **compliant)) == "notified"
        assert n.on_decision(decision(decision_id="a", **compliant)) == "duplicate decision: already notified"
        assert n.on_decision(decision(decision_id="b", **compliant)) == "notified"
    assert len(slack.delivered) == 2
