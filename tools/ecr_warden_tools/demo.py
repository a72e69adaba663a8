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


def _pullable(ecr: Any, tag: str, digest: str | None = None) -> bool:
    """Whether `docker pull` by this tag (or by digest) would get the image."""
    image_id = {"imageDigest": digest} if digest else {"imageTag": tag}
    try:
        ecr.batch_get_image(repositoryName=REPOSITORY, imageIds=[image_id])["images"][0]
    except (IndexError, KeyError):
        return False
    return True


def _what_still_pulls(n: _Narrator, digest: str) -> None:
    """Quarantine takes the deployable tags away; it does not make the image unpullable. Say so."""
    tags = _tags(n.ecr, digest)
    n.say(
        f"  still pullable by digest: {_pullable(n.ecr, '', digest)}; by its quarantine tag "
        f"{', '.join(tags) or '-'}: {bool(tags) and _pullable(n.ecr, tags[0])} "
        "(a hard block needs block_method: archive, or a check at deploy time)"
    )


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


# Demo-sized waiting: the defaults re-check lagging findings after 60 s and fail closed after 10 minutes.
DEMO_FINDINGS_LAG: dict[str, Any] = {"window_seconds": 12, "first_recheck_seconds": 4, "on_timeout": "block"}


def _demo_timings(stack: LocalStack, say: Any) -> None:
    """Shorten the findings-lag window in the deployed policy before any function has read (and cached) it."""
    from ecr_warden.policy.load import default_policy
    from ecr_warden.policy.model import FindingsLag

    policy = default_policy().model_copy(update={"findings_lag": FindingsLag(**DEMO_FINDINGS_LAG)})
    stack.client("ssm").put_parameter(
        Name=stack.provisioned.outputs["PolicyParameterName"],
        Value=policy.model_dump_json(),
        Type="String",
        Overwrite=True,
    )
    say(
        "demo policy: lagging findings re-checked after 4 s, decided by the counts after 12 s "
        "(defaults: 60 s and 10 min)"
    )


def _wait_for_decision(stack: LocalStack, digest: str, timeout: float) -> None:
    """The delayed checks run from the queue on their own; wait until the image is no longer PENDING."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _record(stack, digest).get("status") == "PENDING":
        time.sleep(0.5)
    stack.wait_idle()


class _Narrator:
    """What every step needs: the stack, its ECR client, and the notifications already shown."""

    def __init__(self, stack: LocalStack, say: Any) -> None:
        self.stack, self.say = stack, say
        self.ecr = stack.client("ecr")
        self.inbox = _subscribe_queue(stack)
        self.slack_seen = 0

    def push(self, seed: str, tag: str) -> str:
        pushed = self.ecr.put_image(repositoryName=REPOSITORY, imageManifest=image_manifest(seed), imageTag=tag)
        return str(pushed["image"]["imageId"]["imageDigest"])

    def show(self, digest: str) -> int:
        """The audit record and the new notifications; how many new Slack messages there were."""
        _show_record(self.stack, digest, self.say)
        before = self.slack_seen
        self.slack_seen = _show_notifications(self.stack, self.inbox, self.slack_seen, self.say)
        return self.slack_seen - before


def _quarantine_step(n: _Narrator) -> str:
    digest = n.push("api-server-v1.2.3", "v1.2.3")
    n.say(f"\npushed {REPOSITORY}:v1.2.3 ({digest[:19]}…); tags now {_tags(n.ecr, digest)}")
    n.stack.scan(REPOSITORY, fixture="critical", digest=digest, scanner="enhanced")
    n.stack.wait_idle()
    n.say("enhanced scan finished with CRITICAL findings (fixture 'critical')")
    n.say(f"  tags after the gate: {_tags(n.ecr, digest)}; v1.2.3 pullable: {_pullable(n.ecr, 'v1.2.3')}")
    _what_still_pulls(n, digest)
    n.show(digest)
    return digest


def _clean_step(n: _Narrator) -> str:
    digest = n.push("api-server-v1.2.4", "v1.2.4")
    n.say(f"\npushed {REPOSITORY}:v1.2.4 ({digest[:19]}…); tags now {_tags(n.ecr, digest)}")
    n.stack.scan(REPOSITORY, fixture="clean", digest=digest, scanner="enhanced")
    n.stack.wait_idle()
    n.say(f"clean scan: tags after the gate: {_tags(n.ecr, digest)}; v1.2.4 pullable: {_pullable(n.ecr, 'v1.2.4')}")
    if not n.show(digest):
        n.say("  (no notification: a clean result is recorded and announced on the bus, not messaged)")
    return digest


def _retag_step(n: _Narrator, quarantined: str) -> None:
    n.say("\nre-tagging the quarantined digest as v1.2.3-hotfix …")
    vulnerable = image_manifest("api-server-v1.2.3")
    n.ecr.put_image(
        repositoryName=REPOSITORY,
        imageManifest=vulnerable,
        imageTag="v1.2.3-hotfix",
        imageDigest=manifest_digest(vulnerable),
    )
    n.stack.wait_idle()
    hotfix = _pullable(n.ecr, "v1.2.3-hotfix")
    n.say(f"  tags after the gate: {_tags(n.ecr, quarantined)}; v1.2.3-hotfix pullable: {hotfix}")
    n.show(quarantined)


def _tag_reuse_step(n: _Narrator, quarantined: str) -> None:
    n.say("\npushing a different image as v1.2.3 (IMMUTABLE, yet the tag is free: quarantine took it away) …")
    other = n.push("api-server-v1.2.3-rebuilt", "v1.2.3")
    n.stack.wait_idle()
    n.say(f"  v1.2.3 now points at {other[:19]}…; the quarantined image is {quarantined[:19]}…")
    n.show(quarantined)


def _lagging_findings_step(n: _Narrator) -> str:
    digest = n.push("api-server-v1.4.0", "v1.4.0")
    n.say(f"\npushed {REPOSITORY}:v1.4.0 ({digest[:19]}…); its scan reports CRITICAL findings that the scanner")
    n.say("does not list yet (AWS documents this lag; here they never show up within the window)")
    n.stack.scan(REPOSITORY, fixture="critical", digest=digest, scanner="enhanced", findings_lag=3600)
    n.stack.wait_idle()
    n.say(f"  right after the scan: tags {_tags(n.ecr, digest)}; status {_record(n.stack, digest).get('status')}")
    _wait_for_decision(n.stack, digest, timeout=60)
    n.say(f"  when the window closed: tags {_tags(n.ecr, digest)}; v1.4.0 pullable: {_pullable(n.ecr, 'v1.4.0')}")
    n.show(digest)
    return digest


def _settings_step(n: _Narrator) -> dict[str, Any]:
    """A plain `create-repository` (MUTABLE, no lifecycle policy, AES256), brought into line by the settings guard."""
    name = "ses-base/scratchpad"
    n.ecr.create_repository(repositoryName=name)
    n.say(f"\ncreated {name} with no options (MUTABLE, no lifecycle policy, AES256), as a team might")
    n.stack.wait_idle()
    repository = n.ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    rules = json.loads(n.ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])["rules"]
    tags = {t["Key"]: t["Value"] for t in n.ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"]}
    statements = json.loads(n.ecr.get_repository_policy(repositoryName=name)["policyText"])["Statement"]
    n.say(f"  tag mutability now {repository['imageTagMutability']}; {len(rules)} lifecycle rules:")
    for rule in rules:
        n.say(f"    {rule['rulePriority']:>3}. {rule.get('description', '')}")
    n.say(f"  tags {tags}")
    n.say(f"  repository policy statements: {', '.join(s.get('Sid', '?') for s in statements)}")
    n.say(f"  encryption {repository['encryptionConfiguration']['encryptionType']}: reported, never recreated")
    before = n.slack_seen
    n.slack_seen = _show_notifications(n.stack, n.inbox, n.slack_seen, n.say)
    return {"mutability": repository["imageTagMutability"], "lifecycle_rules": len(rules), "tags": tags,
            "messages": n.slack_seen - before}  # fmt: skip


def _doctor_step(stack: LocalStack, say: Any) -> int:
    import argparse

    from ecr_warden_tools import doctor

    say("\necr-warden doctor (what a deployment needs, checked against this stack):")
    args = argparse.Namespace(
        environment="dev", stack=None, region=stack.region, endpoint_url=stack.endpoint_url,
        send_test_message=False, strict=False,
    )  # fmt: skip
    return doctor.run(args, out=lambda line: say(f"  {line}"))


def run_demo(template: Path, port: int = 0, mode: str = "enforce", say: Any = print) -> dict[str, Any]:
    quiet = {"Mode": mode, "LogLevel": "ERROR"}  # the demo narrates; function logs would drown it
    with LocalStack(template, port=port, parameters=quiet, echo=lambda _line: None) as stack:
        say(f"local stack ready on {stack.endpoint_url} (mode {mode})")
        _demo_timings(stack, say)
        narrator = _Narrator(stack, say)
        narrator.ecr.create_repository(
            repositoryName=REPOSITORY,
            imageScanningConfiguration={"scanOnPush": True},
            encryptionConfiguration={"encryptionType": "KMS"},
            imageTagMutability="IMMUTABLE",
        )
        say(f"created {REPOSITORY}: scanOnPush=true, encryption KMS, tags IMMUTABLE (as in the operations guide)")
        narrator.ecr.put_registry_scanning_configuration(
            scanType="ENHANCED",
            rules=[
                {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}
            ],
        )
        stack.wait_idle()
        say("registry scanning: ENHANCED, continuous, every repository (the guide's baseline)")
        quarantined = _quarantine_step(narrator)
        passed = _clean_step(narrator)
        _retag_step(narrator, quarantined)
        _tag_reuse_step(narrator, quarantined)
        lagging = _lagging_findings_step(narrator)
        settings = _settings_step(narrator)
        doctor_exit = _doctor_step(stack, say)
        return {
            "quarantined": _record(stack, quarantined),
            "passed": _record(stack, passed),
            "lagging": _record(stack, lagging),
            "settings": settings,
            "doctor_exit": doctor_exit,
            "slack_messages": stack.catcher.messages if stack.catcher else [],
        }
