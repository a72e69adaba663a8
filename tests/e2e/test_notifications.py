"""Notifications on the local stack, as a new user would see them: the catcher's Slack messages and SNS."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from ecr_warden_tools.local.images import image_manifest
from tests.conftest import load_event
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e


def _sns_inbox(stack: RunningStack, name: str) -> str:
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sns.subscribe(
        TopicArn=stack.state()["outputs"]["DecisionsTopicArn"],
        Protocol="sqs",
        Endpoint=f"arn:aws:sqs:us-east-1:123456789012:{name}",
    )
    return str(url)


def _drain(stack: RunningStack, url: str) -> list[dict[str, Any]]:
    sqs, found = stack.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for m in messages:
            found.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return found


def _slack_for(stack: RunningStack, digest: str) -> list[dict[str, Any]]:
    return [m for m in stack.state()["slack_messages"] if digest[:19] in json.dumps(m)]


def _quarantine(stack: RunningStack, repository: str, seed: str) -> str:
    ecr = stack.client("ecr")
    ecr.create_repository(repositoryName=repository)
    digest = str(
        ecr.put_image(repositoryName=repository, imageManifest=image_manifest(seed), imageTag="v1")["image"]["imageId"][
            "imageDigest"
        ]
    )
    stack.cli(
        "scan", "--endpoint-url", stack.endpoint_url, "--repository", repository, "--tag", "v1", "--fixture", "critical"
    )
    return digest


def _about(messages: list[dict[str, Any]], digest: str) -> list[dict[str, Any]]:
    return [m for m in messages if digest in m["Message"]]


def test_a_quarantine_sends_one_slack_and_one_sns_message(stack: RunningStack) -> None:
    inbox = _sns_inbox(stack, "e2e-inbox-one")
    digest = _quarantine(stack, "e2e/notify-one", "notify-one")
    stack.wait_for(lambda: _slack_for(stack, digest), what="Slack message")
    messages = stack.wait_for(lambda: _about(_drain(stack, inbox), digest), what="SNS message")
    stack.wait_for(lambda: stack.state()["pending_events"] == 0, what="quiet")
    assert len(_slack_for(stack, digest)) == 1
    # one message about the image (the settings guard also announces what it did to the new repository)
    assert len(messages) + len(_about(_drain(stack, inbox), digest)) == 1
    attributes = {k: v["Value"] for k, v in messages[0]["MessageAttributes"].items()}
    assert attributes == {
        "severity": "CRITICAL",
        "action": "quarantined",
        "repository": "e2e/notify-one",
        "account": "123456789012",
        "region": "us-east-1",
        "environment": "dev",
    }
    assert messages[0]["Subject"].startswith("[ecr-warden] Quarantined: e2e/notify-one:v1")


def test_fifty_findings_in_a_minute_give_one_message_and_at_most_one_follow_up(stack: RunningStack) -> None:
    digest = _quarantine(stack, "e2e/notify-flood", "notify-flood")
    stack.wait_for(lambda: _slack_for(stack, digest), what="first Slack message")
    sample = load_event("inspector2-finding-critical-active.json")
    entries = []
    for i in range(50):
        detail = json.loads(json.dumps(sample["detail"]))
        detail["packageVulnerabilityDetails"]["vulnerabilityId"] = f"CVE-2026-{9000 + i}"
        detail["findingArn"] = f"arn:aws:inspector2:us-east-1:123456789012:finding/{uuid.uuid4().hex}"
        detail["resources"][0]["details"]["awsEcrContainerImage"].update(
            {"repositoryName": "e2e/notify-flood", "imageHash": digest}
        )
        entries.append({"Source": "aws.inspector2", "DetailType": "Inspector2 Finding", "Detail": json.dumps(detail)})
    events = stack.client("events")
    for start in range(0, 50, 10):
        assert events.put_events(Entries=entries[start : start + 10])["FailedEntryCount"] == 0
    sqs = stack.client("sqs")
    follow_ups = sqs.get_queue_url(QueueName="ecr-warden-dev-follow-ups")["QueueUrl"]

    def delayed() -> int:
        attributes = sqs.get_queue_attributes(
            QueueUrl=follow_ups, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
        )
        return int(attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"])

    stack.wait_for(lambda: delayed() >= 1, timeout=60, what="a follow-up scheduled")
    stack.wait_for(lambda: stack.state()["pending_events"] == 0, what="events delivered")
    assert len(_slack_for(stack, digest)) == 1  # the flood did not produce more messages now
    assert delayed() == 1  # and exactly one aggregated follow-up is due when the window closes


def test_release_from_the_cli_restores_tags_and_is_announced(stack: RunningStack, tmp_path: Path) -> None:
    digest = _quarantine(stack, "e2e/notify-release", "notify-release")
    ecr = stack.client("ecr")
    stack.wait_for(
        lambda: (
            ecr.describe_images(repositoryName="e2e/notify-release", imageIds=[{"imageDigest": digest}])[
                "imageDetails"
            ][0]["imageTags"]
            == [f"quarantined-{digest[7:19]}"]
        ),
        what="quarantine",
    )
    result = stack.cli(
        "release",
        "--endpoint-url",
        stack.endpoint_url,
        "--repository",
        "e2e/notify-release",
        "--digest",
        digest,
        "--reason",
        "accepted risk SEC-7",
        "--by",
        "e2e",
    )
    assert "released" in result.stdout
    tags = ecr.describe_images(repositoryName="e2e/notify-release", imageIds=[{"imageDigest": digest}])["imageDetails"][
        0
    ]["imageTags"]
    assert tags == ["v1"]
    stack.wait_for(lambda: any("Released" in json.dumps(m) for m in _slack_for(stack, digest)), what="release message")


def test_webhook_url_is_in_no_function_log_line(stack: RunningStack) -> None:
    url = stack.state()["outputs"]["SlackWebhookSecretArn"]
    catcher = next(line.split(": ", 1)[1] for line in stack.lines if line.startswith("slack webhook catcher: "))
    assert url
    function_lines = [line for line in stack.lines if not line.startswith("slack webhook catcher: ")]
    assert all(catcher not in line for line in function_lines)
    assert all("localcatcher" not in line for line in function_lines)
