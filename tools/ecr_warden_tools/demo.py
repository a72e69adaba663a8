"""`ecr-warden demo`: the core loop on the embedded local stack, as a newcomer would try it.

Creates ses-base/api-server the way the ECR operations guide does (scan on push, KMS encryption, IMMUTABLE
tags), pushes v1.2.3 whose scan finds CRITICAL CVEs (quarantined), pushes a clean v1.2.4 (passes), tries to
re-tag the quarantined digest (blocked), and prints tags and audit records along the way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ecr_warden_tools.local.images import image_manifest, manifest_digest
from ecr_warden_tools.local.stack import ACCOUNT_ID, LocalStack

REPOSITORY = "ses-base/api-server"


def _tags(ecr: Any, digest: str) -> list[str]:
    details = ecr.describe_images(repositoryName=REPOSITORY, imageIds=[{"imageDigest": digest}])["imageDetails"]
    return sorted(details[0].get("imageTags") or []) if details else []


def _pullable(ecr: Any, tag: str) -> bool:
    try:
        ecr.batch_get_image(repositoryName=REPOSITORY, imageIds=[{"imageTag": tag}])["images"][0]
    except (IndexError, KeyError):
        return False
    return True


def _record(stack: LocalStack, digest: str) -> dict[str, Any]:
    dynamodb = stack.client("dynamodb")
    from ecr_warden.adapters.audit_store import DynamoAuditStore
    from ecr_warden.domain.images import Scope

    scope = Scope(ACCOUNT_ID, stack.region)
    store = DynamoAuditStore(stack.provisioned.outputs["AuditTableName"], scope, dynamodb)
    record = store.get(REPOSITORY, digest)
    return record.model_dump(mode="json", exclude_none=True) if record else {}


def _show_record(stack: LocalStack, digest: str, say: Any) -> None:
    record = _record(stack, digest)
    summary = {
        k: record.get(k)
        for k in ("status", "original_tags", "quarantine_tag", "severity_counts", "counted_ids", "rule")
    }
    say("  audit record: " + json.dumps(summary))
    for entry in record.get("history", [])[-3:]:
        say(f"    {entry['at'][:19]} {entry['action']}: {entry['reason']}")


def _subscribe_queue(stack: LocalStack) -> str:
    """An SQS queue subscribed to the decisions topic: how the demo reads what e-mail subscribers would get."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url = sqs.create_queue(QueueName="demo-sns-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=stack.provisioned.outputs["DecisionsTopicArn"], Protocol="sqs", Endpoint=arn)
    return str(url)


def _show_notifications(stack: LocalStack, inbox: str, seen: int, say: Any) -> int:
    from ecr_warden_tools.local.catcher import render

    messages = stack.catcher.messages if stack.catcher else []
    for caught in messages[seen:]:
        say("  --- Slack message (as the channel shows it) ---")
        for line in render(caught["body"]).splitlines():
            say("  | " + line)
    sqs = stack.client("sqs")
    for message in sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", []):
        envelope = json.loads(message["Body"])
        attributes = {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}
        say("  --- SNS message ---")
        say(f"  | Subject: {envelope.get('Subject')}")
        say(f"  | Attributes: {json.dumps(attributes, sort_keys=True)}")
        document = json.loads(envelope["Message"])
        say(
            f"  | Message: schema {document['schema_version']}, kind {document['kind']}, "
            f"action {document['decision']['action']}, highest severity {document['highest_severity']}"
        )
        sqs.delete_message(QueueUrl=inbox, ReceiptHandle=message["ReceiptHandle"])
    return len(messages)


def run_demo(template: Path, port: int = 0, mode: str = "enforce", say: Any = print) -> dict[str, Any]:
    quiet = {"Mode": mode, "LogLevel": "ERROR"}  # the demo narrates; function logs would drown it
    with LocalStack(template, port=port, parameters=quiet, echo=lambda _line: None) as stack:
        say(f"local stack ready on {stack.endpoint_url} (mode {mode})")
        inbox = _subscribe_queue(stack)
        slack_seen = 0
        ecr = stack.client("ecr")
        ecr.create_repository(
            repositoryName=REPOSITORY,
            imageScanningConfiguration={"scanOnPush": True},
            encryptionConfiguration={"encryptionType": "KMS"},
            imageTagMutability="IMMUTABLE",
        )
        say(f"created {REPOSITORY}: scanOnPush=true, encryption KMS, tags IMMUTABLE (as in the operations guide)")

        vulnerable = image_manifest("api-server-v1.2.3")
        bad = ecr.put_image(repositoryName=REPOSITORY, imageManifest=vulnerable, imageTag="v1.2.3")
        bad_digest = bad["image"]["imageId"]["imageDigest"]
        say(f"\npushed {REPOSITORY}:v1.2.3 ({bad_digest[:19]}…); tags now {_tags(ecr, bad_digest)}")
        stack.scan(REPOSITORY, fixture="critical", digest=bad_digest, scanner="enhanced")
        stack.wait_idle()
        say("enhanced scan finished with CRITICAL findings (fixture 'critical')")
        say(f"  tags after the gate: {_tags(ecr, bad_digest)}; v1.2.3 pullable: {_pullable(ecr, 'v1.2.3')}")
        _show_record(stack, bad_digest, say)
        slack_seen = _show_notifications(stack, inbox, slack_seen, say)

        clean = image_manifest("api-server-v1.2.4")
        good_digest = ecr.put_image(repositoryName=REPOSITORY, imageManifest=clean, imageTag="v1.2.4")["image"][
            "imageId"
        ]["imageDigest"]
        say(f"\npushed {REPOSITORY}:v1.2.4 ({good_digest[:19]}…); tags now {_tags(ecr, good_digest)}")
        stack.scan(REPOSITORY, fixture="clean", digest=good_digest, scanner="enhanced")
        stack.wait_idle()
        say(f"clean scan: tags after the gate: {_tags(ecr, good_digest)}; v1.2.4 pullable: {_pullable(ecr, 'v1.2.4')}")
        _show_record(stack, good_digest, say)
        before = slack_seen
        slack_seen = _show_notifications(stack, inbox, slack_seen, say)
        if slack_seen == before:
            say("  (no notification: a clean result is recorded and announced on the bus, not messaged)")

        say("\nre-tagging the quarantined digest as v1.2.3-hotfix …")
        ecr.put_image(
            repositoryName=REPOSITORY,
            imageManifest=vulnerable,
            imageTag="v1.2.3-hotfix",
            imageDigest=manifest_digest(vulnerable),
        )
        stack.wait_idle()
        say(
            f"  tags after the gate: {_tags(ecr, bad_digest)}; "
            f"v1.2.3-hotfix pullable: {_pullable(ecr, 'v1.2.3-hotfix')}"
        )
        _show_record(stack, bad_digest, say)
        slack_seen = _show_notifications(stack, inbox, slack_seen, say)

        say("\npushing a different image as v1.2.3 (IMMUTABLE, yet the tag is free: quarantine took it away) …")
        impostor = image_manifest("api-server-v1.2.3-rebuilt")
        impostor_digest = ecr.put_image(repositoryName=REPOSITORY, imageManifest=impostor, imageTag="v1.2.3")[
            "image"
        ]["imageId"]["imageDigest"]
        stack.wait_idle()
        say(f"  v1.2.3 now points at {impostor_digest[:19]}…; the quarantined image is {bad_digest[:19]}…")
        _show_record(stack, bad_digest, say)
        _show_notifications(stack, inbox, slack_seen, say)
        return {
            "quarantined": _record(stack, bad_digest),
            "passed": _record(stack, good_digest),
            "slack_messages": stack.catcher.messages if stack.catcher else [],
        }
