"""Integration fixtures: moto in-process, provisioned from template.yaml itself, and the gate wired to it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import boto3
import pytest
from moto import mock_aws

from ecr_warden import runtime
from ecr_warden.adapters import aws as aws_clients
from ecr_warden.adapters.audit_store import DynamoAuditStore
from ecr_warden.adapters.decision_bus import EventBridgeAnnouncer
from ecr_warden.adapters.exemptions import DynamoExemptions
from ecr_warden.adapters.registry import EcrRegistry
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.images import Scope
from ecr_warden.domain.records import ImageRecord
from ecr_warden.gate.context import GateContext
from ecr_warden.gate.dispatch import ScanGate
from ecr_warden.gate.ports import Ports
from ecr_warden.policy.load import default_policy
from ecr_warden.policy.model import Policy
from ecr_warden.settings import AdminSettings
from ecr_warden_tools.local import moto_patches
from ecr_warden_tools.local.images import image_manifest
from ecr_warden_tools.local.provision import Provisioner
from ecr_warden_tools.local.template import Resolver, load_template, parameter_defaults
from tests.conftest import TEMPLATE
from tests.events import ACCOUNT, REPOSITORY

SCOPE = Scope(ACCOUNT, "us-east-1")


@dataclass
class FakeEnhancedFindings:
    """In-memory Inspector: moto's ListFindings ignores filters, so the gate's port is faked instead."""

    findings: dict[tuple[str, str], list[Finding]] = field(default_factory=dict)
    covered: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)
    calls: int = 0

    def active_findings(self, repository: str, digest: str) -> list[Finding]:
        self.calls += 1
        return list(self.findings.get((repository, digest), []))

    def coverage(self, repository: str, digest: str, repository_arn: str) -> tuple[str, str | None] | None:
        self.calls += 1
        return self.covered.get((repository, digest))


class CallCounter:
    """Counts AWS API calls per operation, across every client it is attached to."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def attach(self, client: Any) -> Any:
        service = client.meta.service_model.service_name
        client.meta.events.register(
            "before-call.*.*", lambda model, **_: self.calls.update([f"{service}:{model.name}"])
        )
        return client

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@dataclass
class Env:
    outputs: dict[str, str]
    clients: dict[str, Any]
    enhanced: FakeEnhancedFindings
    counter: CallCounter
    decisions_queue_url: str

    @property
    def ecr(self) -> Any:
        return self.clients["ecr"]

    def gate(self, policy: Policy | None = None, mode: Literal["enforce", "audit"] = "enforce") -> ScanGate:
        ctx = GateContext(
            policy=policy or default_policy(), mode=mode, account=ACCOUNT, region=SCOPE.region, environment="dev"
        )
        ports = Ports(
            registry=EcrRegistry(self.clients["ecr"]),
            enhanced=self.enhanced,
            store=self.store,
            announcer=EventBridgeAnnouncer(self.outputs["DecisionBusName"], self.clients["events"]),
            # as deployed (gate/entry.py): stored exemptions are read when a verdict would block
            exemptions=DynamoExemptions(self.outputs["AuditTableName"], SCOPE, self.clients["dynamodb"]),
        )
        return ScanGate(ctx, ports)

    @property
    def store(self) -> DynamoAuditStore:
        return DynamoAuditStore(self.outputs["AuditTableName"], SCOPE, self.clients["dynamodb"])

    def create_repository(self, name: str = REPOSITORY, immutable: bool = True) -> None:
        self.ecr.create_repository(
            repositoryName=name,
            imageTagMutability="IMMUTABLE" if immutable else "MUTABLE",
            imageScanningConfiguration={"scanOnPush": True},
        )

    def push(
        self,
        tag: str | None,
        seed: str,
        repository: str = REPOSITORY,
        media_type: str | None = None,
        manifest: str | None = None,
    ) -> str:
        args: dict[str, Any] = {"repositoryName": repository, "imageManifest": manifest or image_manifest(seed)}
        if tag:
            args["imageTag"] = tag
        if media_type:
            args["imageManifestMediaType"] = media_type
        return str(self.ecr.put_image(**args)["image"]["imageId"]["imageDigest"])

    def tags(self, digest: str, repository: str = REPOSITORY) -> list[str]:
        details = self.ecr.describe_images(repositoryName=repository, imageIds=[{"imageDigest": digest}])
        return sorted(details["imageDetails"][0].get("imageTags") or [])

    def record(self, digest: str, repository: str = REPOSITORY) -> ImageRecord | None:
        return self.store.get(repository, digest)

    def decisions(self) -> list[dict[str, Any]]:
        sqs = self.clients["sqs"]
        found = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.decisions_queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"])["detail"])
                sqs.delete_message(QueueUrl=self.decisions_queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def aws() -> Iterator[Env]:
    moto_patches.apply()
    with mock_aws():
        counter = CallCounter()
        clients: dict[str, Any] = {}

        def client(service: str) -> Any:
            if service not in clients:
                clients[service] = counter.attach(boto3.client(service, region_name="us-east-1"))
            return clients[service]

        template = load_template(TEMPLATE)
        resolver = Resolver(template, parameter_defaults(template), "us-east-1", ACCOUNT)
        outputs = Provisioner(client, template, TEMPLATE.parent, resolver).run().outputs
        sqs, events = client("sqs"), client("events")
        queue_url = sqs.create_queue(QueueName="decisions-under-test")["QueueUrl"]
        events.put_rule(
            Name="all-decisions",
            EventBusName=outputs["DecisionBusName"],
            EventPattern=json.dumps({"source": ["ecr-warden"]}),
        )
        events.put_targets(
            Rule="all-decisions",
            EventBusName=outputs["DecisionBusName"],
            Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:decisions-under-test"}],
        )
        for name in ("ecr", "dynamodb", "inspector2"):
            client(name)
        counter.calls.clear()
        yield Env(outputs, clients, FakeEnhancedFindings(), counter, queue_url)


# -- organization mode: member accounts on the same moto, reached through assumed roles --------------------------

ROLE = "ecr-warden-member"


def member_client(service: str, scope: Scope) -> Any:
    """A client in a member account, as its own administrators (or ECR replication) would act there."""
    sts = boto3.client("sts", region_name="us-east-1")
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{scope.account}:role/{ROLE}", RoleSessionName="test")[
        "Credentials"
    ]
    return boto3.client(
        service,
        region_name=scope.region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


@pytest.fixture
def organization(aws: Env) -> Iterator[Env]:
    aws_clients.reset_clients()
    runtime.forget_policy_sources()
    yield aws
    aws_clients.configure(None, None)  # the factory is module state: leave it single-account for other tests
    aws_clients.reset_clients()


def admin_settings(aws: Env, regions: tuple[str, ...] = ()) -> AdminSettings:
    """The central admin function's environment as template.yaml sets it with OrganizationId."""
    return AdminSettings.from_env({
        "AWS_REGION": "us-east-1", "WARDEN_ENVIRONMENT": "dev", "WARDEN_MODE": "enforce",
        "AUDIT_TABLE_NAME": aws.outputs["AuditTableName"], "DECISION_BUS_NAME": aws.outputs["DecisionBusName"],
        "POLICY_PARAMETER_NAME": aws.outputs["PolicyParameterName"],
        "RECONCILE_QUEUE_URL": aws.outputs["SettingsReconcileQueueUrl"], "RUN_QUEUE_URL": aws.outputs["RunQueueUrl"],
        "RUN_REGIONS": ",".join(regions), "MEMBER_ROLE_NAME": ROLE, "WARDEN_ACCOUNT_ID": ACCOUNT,
    })  # fmt: skip
