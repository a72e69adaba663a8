"""Operator helpers behind the CLI: deployment names, a release run in-process (tests, break-glass), redrive of
parked Slack messages. Admin actions go through the admin function (admin_client.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ecr_warden.actions import find
from ecr_warden.adapters.aws import client
from ecr_warden.adapters.policy_source import SsmPolicySource
from ecr_warden.gate.context import Outcome
from ecr_warden.gate.entry import build_gate
from ecr_warden.settings import GateSettings


@dataclass(frozen=True)
class Deployment:
    """Resource names of one deployment, as template.yaml derives them from EnvironmentName."""

    environment: str
    region: str

    @property
    def audit_table(self) -> str:
        return f"ecr-warden-{self.environment}-audit-v2"

    @property
    def legacy_audit_table(self) -> str:
        """The audit table of versions before 0.2 (keyed by repository + digest only)."""
        return f"ecr-warden-{self.environment}-audit"

    @property
    def bus(self) -> str:
        return f"ecr-warden-{self.environment}"

    @property
    def policy_parameter(self) -> str:
        return f"/ecr-warden/{self.environment}/policy"

    def delayed_checks_queue_url(self, account: str) -> str:
        return f"https://sqs.{self.region}.amazonaws.com/{account}/ecr-warden-{self.environment}-delayed-checks"

    @property
    def slack_dead_letter_queue(self) -> str:
        return f"ecr-warden-{self.environment}-slack-dlq"


def release(deployment: Deployment, repository: str, digest: str, reason: str, by: str) -> Outcome:
    account = str(client("sts").get_caller_identity()["Account"])
    settings = GateSettings(
        environment=deployment.environment,
        region=deployment.region,
        audit_table_name=deployment.audit_table,
        decision_bus_name=deployment.bus,
        policy_parameter_name=deployment.policy_parameter,
        delayed_checks_queue_url=deployment.delayed_checks_queue_url(account),
    )
    gate = build_gate(settings, account=account)
    request = {"repository": repository, "digest": digest, "reason": reason, "by": by}
    return find("release").invoke(request, gate.actor)


def redrive_slack(deployment: Deployment, limit: int = 100, default_secret: str | None = None) -> tuple[int, int]:
    """Send parked Slack messages again; each one that goes through is deleted from the queue."""
    from ecr_warden.adapters.follow_up import SqsFollowUps
    from ecr_warden.adapters.notify_state import DynamoNotifyState
    from ecr_warden.adapters.slack import SlackWebhooks
    from ecr_warden.adapters.sns import SnsPublisher
    from ecr_warden.notify.service import Notifier

    sqs = client("sqs")
    queue_url = sqs.get_queue_url(QueueName=deployment.slack_dead_letter_queue)["QueueUrl"]
    secret = default_secret or f"ecr-warden/{deployment.environment}/slack-webhook"
    notifier = Notifier(
        policy=SsmPolicySource(deployment.policy_parameter).get(),
        state=DynamoNotifyState(f"ecr-warden-{deployment.environment}-notify-state"),
        slack=SlackWebhooks(secret),
        sns=SnsPublisher(""),
        follow_ups=SqsFollowUps(""),
        slack_dead_letter=_Requeue(),
        function_name="cli",
    )
    sent = failed = 0
    while sent + failed < limit:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
            "Messages", []
        )
        if not messages:
            break
        for message in messages:
            if notifier.redrive(json.loads(message["Body"])):
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                sent += 1
            else:
                failed += 1  # stays parked; visible again after the visibility timeout
    return sent, failed


class _Requeue:
    """While redriving, a message that fails again simply stays in the dead-letter queue."""

    def send(self, event: Any, error: Exception, function_name: str) -> None:
        return
