"""One moto account provisioned from template.yaml for a whole test module (the fault-injection and concurrency
suites run hundreds of cases: each case works on a repository of its own instead of a fresh account)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws

from ecr_warden.domain.images import Scope
from ecr_warden.domain.records import ImageRecord
from ecr_warden.settings import GateSettings, NotifierSettings
from ecr_warden_tools.local import moto_patches
from ecr_warden_tools.local.images import image_manifest
from ecr_warden_tools.local.provision import Provisioner
from ecr_warden_tools.local.template import Resolver, load_template, parameter_defaults
from tests.conftest import TEMPLATE
from tests.events import ACCOUNT

REGION = "us-east-1"
SCOPE = Scope(ACCOUNT, REGION)


@dataclass
class MotoStack:
    outputs: dict[str, str]
    clients: dict[str, Any]  # the tests' own clients: never faulted, never counted
    decisions_queue_url: str
    inbox_queue_url: str  # subscribed to the decisions topic (SNS)
    _decisions: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(service, region_name=REGION)
        return self.clients[service]

    # -- settings as the template sets them ---------------------------------------------------------------------

    def gate_settings(self, policy_parameter: str | None = None) -> GateSettings:
        return GateSettings(
            audit_table_name=self.outputs["AuditTableName"],
            decision_bus_name=self.outputs["DecisionBusName"],
            delayed_checks_queue_url=self.outputs["DelayedChecksQueueUrl"],
            dead_letter_queue_url=self.outputs["ScanGateDeadLetterQueueUrl"],
            policy_parameter_name=policy_parameter or self.outputs["PolicyParameterName"],
            function_name="ecr-warden-dev-scan-gate",
            environment="dev",
        )

    def notifier_settings(self, policy_parameter: str | None = None) -> NotifierSettings:
        return NotifierSettings(
            topic_arn=self.outputs["DecisionsTopicArn"],
            notify_state_table_name=self.outputs["NotifyStateTableName"],
            follow_up_queue_url=self.client("sqs").get_queue_url(QueueName="ecr-warden-dev-follow-ups")["QueueUrl"],
            slack_dead_letter_queue_url=self.outputs["SlackDeadLetterQueueUrl"],
            slack_webhook_secret_arn=self.outputs["SlackWebhookSecretArn"],
            dead_letter_queue_url=self.outputs["NotifierDeadLetterQueueUrl"],
            policy_parameter_name=policy_parameter or self.outputs["PolicyParameterName"],
            function_name="ecr-warden-dev-notifier",
            environment="dev",
        )

    def put_policy(self, name: str, policy: dict[str, Any]) -> str:
        self.client("ssm").put_parameter(Name=name, Value=json.dumps(policy), Type="String", Overwrite=True)
        return name

    def set_webhook(self, url: str) -> None:
        self.client("secretsmanager").put_secret_value(
            SecretId=self.outputs["SlackWebhookSecretArn"], SecretString=json.dumps({"url": url})
        )

    # -- ECR as a user sees it ----------------------------------------------------------------------------------

    def create_repository(self, name: str, immutable: bool = True) -> None:
        self.client("ecr").create_repository(
            repositoryName=name,
            imageTagMutability="IMMUTABLE" if immutable else "MUTABLE",
            imageScanningConfiguration={"scanOnPush": True},
        )

    def push(self, repository: str, tag: str, seed: str) -> str:
        image = self.client("ecr").put_image(
            repositoryName=repository, imageManifest=image_manifest(seed), imageTag=tag
        )
        return str(image["image"]["imageId"]["imageDigest"])

    def tags(self, repository: str, digest: str) -> list[str]:
        details = self.client("ecr").describe_images(repositoryName=repository, imageIds=[{"imageDigest": digest}])
        return sorted(details["imageDetails"][0].get("imageTags") or [])

    def record(self, repository: str, digest: str) -> ImageRecord | None:
        from ecr_warden.adapters.audit_store import DynamoAuditStore

        return DynamoAuditStore(self.outputs["AuditTableName"], SCOPE, self.client("dynamodb")).get(repository, digest)

    # -- what was announced and published -----------------------------------------------------------------------

    def decisions(self, repository: str, digest: str) -> list[dict[str, Any]]:
        """Every decision event the bus delivered about one image (so far), in order."""
        with self._lock:
            self._decisions.extend(body["detail"] for body in self._drain(self.decisions_queue_url))
            return [d for d in self._decisions if d["repository"] == repository and d["digest"] == digest]

    def queue_messages(self, output: str) -> list[dict[str, Any]]:
        return list(self._drain(self.outputs[output]))

    def _drain(self, url: str) -> Iterator[dict[str, Any]]:
        sqs = self.client("sqs")
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return
            for message in messages:
                yield json.loads(message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@contextmanager
def moto_stack() -> Iterator[MotoStack]:
    """moto in-process, provisioned from template.yaml, with a queue on the decision bus and one on the topic."""
    moto_patches.apply()
    with mock_aws():
        clients: dict[str, Any] = {}

        def client(service: str) -> Any:
            if service not in clients:
                clients[service] = boto3.client(service, region_name=REGION)
            return clients[service]

        template = load_template(TEMPLATE)
        resolver = Resolver(template, parameter_defaults(template), REGION, ACCOUNT)
        outputs = Provisioner(client, template, TEMPLATE.parent, resolver).run().outputs
        sqs, events, sns = client("sqs"), client("events"), client("sns")
        decisions = sqs.create_queue(QueueName="decisions-under-test")["QueueUrl"]
        events.put_rule(
            Name="all-decisions",
            EventBusName=outputs["DecisionBusName"],
            EventPattern=json.dumps({"source": ["ecr-warden"]}),
        )
        events.put_targets(
            Rule="all-decisions",
            EventBusName=outputs["DecisionBusName"],
            Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:decisions-under-test"}],
        )
        inbox = sqs.create_queue(QueueName="sns-inbox-under-test")["QueueUrl"]
        sns.subscribe(
            TopicArn=outputs["DecisionsTopicArn"],
            Protocol="sqs",
            Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:sns-inbox-under-test",
            Attributes={"RawMessageDelivery": "true"},
        )
        yield MotoStack(outputs, clients, decisions, inbox)
