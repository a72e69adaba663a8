"""One organization on moto in-process: the central account runs the gate (template.yaml provisioned with its
defaults), member accounts hold the registries. moto keeps each account's state apart by the credentials of the
role assumed there, so every ECR call below goes through the ClientFactory's assume-role path.

A CRITICAL image is pushed in one member account and region, and "replicated" (moto has no replication: the same
manifest is put into the replica's account and region, as ECR replication would). Each copy's scan event, forwarded
to the central bus as member.yaml does, goes through the real entry point: both copies lose their deployable tags,
and each decision, audit record and Slack message names the copy's own account and region."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

from ecr_warden.adapters.audit_store import DynamoAuditStore
from ecr_warden.admin import entry as admin_entry
from ecr_warden.contracts.decision import DecisionDetail
from ecr_warden.domain.images import Scope
from ecr_warden.gate import entry
from ecr_warden.gate.dispatch import ScanGate
from ecr_warden.notify import message
from ecr_warden.settings import GateSettings
from ecr_warden_tools.local.images import image_manifest
from tests.conftest import load_event
from tests.events import ACCOUNT as CENTRAL
from tests.events import CRITICAL
from tests.integration.conftest import ROLE, Env, admin_settings, member_client

SOURCE = Scope("210987654321", "ap-northeast-1")  # the member account where CI pushes
REPLICA = Scope("987654321098", "us-west-2")  # the replication destination: another account, another region
REPOSITORY = "ses-base/api-server"


def settings(aws: Env) -> GateSettings:
    """The central gate's environment as template.yaml sets it with OrganizationId (MemberRoleName, own account)."""
    return GateSettings.from_env(
        {
            "AWS_REGION": "us-east-1",
            "WARDEN_ENVIRONMENT": "dev",
            "WARDEN_MODE": "enforce",
            "AUDIT_TABLE_NAME": aws.outputs["AuditTableName"],
            "DECISION_BUS_NAME": aws.outputs["DecisionBusName"],
            "POLICY_PARAMETER_NAME": aws.outputs["PolicyParameterName"],
            "DEAD_LETTER_QUEUE_URL": aws.outputs["ScanGateDeadLetterQueueUrl"],
            "DELAYED_CHECKS_QUEUE_URL": aws.outputs["DelayedChecksQueueUrl"],
            "MEMBER_ROLE_NAME": ROLE,
            "WARDEN_ACCOUNT_ID": CENTRAL,
        }
    )


def push_copy(scope: Scope) -> str:
    ecr = member_client("ecr", scope)
    ecr.create_repository(repositoryName=REPOSITORY, imageTagMutability="IMMUTABLE")
    image = ecr.put_image(repositoryName=REPOSITORY, imageManifest=image_manifest("critical"), imageTag="v1.2.3")
    return str(image["image"]["imageId"]["imageDigest"])


def tags(scope: Scope, digest: str) -> list[str]:
    found = member_client("ecr", scope).describe_images(repositoryName=REPOSITORY, imageIds=[{"imageDigest": digest}])
    return sorted(found["imageDetails"][0].get("imageTags") or [])


def scan_event(scope: Scope, digest: str) -> dict[str, Any]:
    """Inspector's scan-complete event in the member account and region, as the central bus receives it."""
    raw = copy.deepcopy(load_event("inspector2-scan-critical.json"))
    raw.update({"id": str(uuid.uuid4()), "account": scope.account, "region": scope.region})
    arn = f"arn:aws:ecr:{scope.region}:{scope.account}:repository/{REPOSITORY}"
    raw["resources"] = [arn]
    raw["detail"].update({"repository-name": arn, "image-digest": digest, "image-tags": ["v1.2.3"]})
    raw["detail"]["finding-severity-counts"] = {"CRITICAL": 1, "HIGH": 1, "TOTAL": 2}
    return raw


def test_a_critical_image_and_its_replica_are_both_blocked_each_in_its_own_account_and_region(
    organization: Env,
) -> None:
    aws = organization
    digest = push_copy(SOURCE)
    assert push_copy(REPLICA) == digest  # the replica: same manifest, same digest, its own tags
    assert aws.ecr.describe_repositories()["repositories"] == []  # nothing in the central account's registry
    aws.enhanced.findings[(REPOSITORY, digest)] = list(CRITICAL)  # moto's ListFindings ignores filters
    built: list[ScanGate] = []

    def gate_factory(gate_settings: GateSettings, account: str) -> ScanGate:
        gate = entry.build_gate(gate_settings, account)
        built.append(gate)
        gate.ports.enhanced = aws.enhanced
        return gate

    for copy_of in (SOURCE, REPLICA):
        outcome = entry.process(scan_event(copy_of, digest), settings(aws), gate_factory)
        assert (outcome["action"], outcome["status"]) == ("quarantined", "QUARANTINED"), outcome

    # each gate acted in the copy's own registry, reached through the member role there
    assert [(g.ctx.account, g.ctx.region) for g in built] == [
        (SOURCE.account, SOURCE.region),
        (REPLICA.account, REPLICA.region),
    ]
    assert [g.ports.registry.scope for g in built] == [SOURCE, REPLICA]  # type: ignore[attr-defined]
    quarantine_tag = f"quarantined-{digest.removeprefix('sha256:')[:12]}"
    assert tags(SOURCE, digest) == [quarantine_tag]
    assert tags(REPLICA, digest) == [quarantine_tag]

    # the central audit table holds one record per copy, keyed by its account and region
    for scope in (SOURCE, REPLICA):
        record = DynamoAuditStore(aws.outputs["AuditTableName"], scope, aws.clients["dynamodb"]).get(REPOSITORY, digest)
        assert record is not None
        assert str(record.status) == "QUARANTINED"
        assert record.original_tags == ["v1.2.3"]
    keys = {item["pk"]["S"] for item in aws.clients["dynamodb"].scan(TableName=aws.outputs["AuditTableName"])["Items"]}
    assert {
        f"{SOURCE.account}#{SOURCE.region}#{REPOSITORY}",
        f"{REPLICA.account}#{REPLICA.region}#{REPOSITORY}",
    } <= keys

    # one decision per copy on the central bus, and one Slack message per copy naming its account and region
    decisions = [DecisionDetail.model_validate(d) for d in aws.decisions()]
    assert sorted((d.account, d.region, d.action.value) for d in decisions) == sorted(
        [(SOURCE.account, SOURCE.region, "quarantined"), (REPLICA.account, REPLICA.region, "quarantined")]
    )
    for decision in decisions:
        slack = json.dumps(message.slack_message(decision))
        assert f"{decision.account} / {decision.region}" in slack
        assert f"https://{decision.region}.console.aws.amazon.com/ecr/repositories/private/{decision.account}/" in slack
        attributes = {k: v["StringValue"] for k, v in message.sns_attributes(decision).items()}
        assert (attributes["account"], attributes["region"]) == (decision.account, decision.region)


def test_the_central_accounts_own_registry_is_reached_with_its_own_credentials(organization: Env) -> None:
    """The security account may have repositories too: no role is assumed for them (it has no member role)."""
    aws = organization
    aws.create_repository()
    digest = aws.push("v9.9.9", "critical")
    aws.enhanced.findings[(REPOSITORY, digest)] = list(CRITICAL)

    def gate_factory(gate_settings: GateSettings, account: str) -> ScanGate:
        gate = entry.build_gate(gate_settings, account)
        gate.ports.enhanced = aws.enhanced
        return gate

    outcome = entry.process(scan_event(Scope(CENTRAL, "us-east-1"), digest), settings(aws), gate_factory)
    assert outcome["action"] == "quarantined"
    assert aws.tags(digest) == [f"quarantined-{digest.removeprefix('sha256:')[:12]}"]


def test_a_forwarded_event_naming_no_real_region_is_rejected_not_acted_on(organization: Env) -> None:
    aws = organization
    raw = scan_event(SOURCE, "sha256:" + "a" * 64)
    raw["region"] = "evil.example.com"
    outcome = entry.process(raw, settings(aws), lambda s, a: pytest.fail("no gate for a forged region"))
    assert outcome["status"] == "rejected"
    assert "region" in outcome["error"]


def test_the_central_admin_function_releases_a_members_copy_in_its_own_account_and_region(organization: Env) -> None:
    """What a Slack message's command does: release acts in the registry the decision names, nowhere else."""
    aws = organization
    digest = push_copy(SOURCE)
    push_copy(REPLICA)
    aws.enhanced.findings[(REPOSITORY, digest)] = list(CRITICAL)

    def gate_factory(gate_settings: GateSettings, account: str) -> ScanGate:
        gate = entry.build_gate(gate_settings, account)
        gate.ports.enhanced = aws.enhanced
        return gate

    for copy_of in (SOURCE, REPLICA):
        entry.process(scan_event(copy_of, digest), settings(aws), gate_factory)
    release = {"action": "release", "repository": REPOSITORY, "digest": digest, "reason": "false positive SEC-1",
               "by": "alice", "account": SOURCE.account, "region": SOURCE.region}  # fmt: skip
    answer = admin_entry.process(release, admin_settings(aws), account=CENTRAL)
    assert answer["ok"], answer
    assert (answer["account"], answer["region"]) == (SOURCE.account, SOURCE.region)
    assert answer["result"]["outcome"] == "released"
    quarantine_tag = f"quarantined-{digest.removeprefix('sha256:')[:12]}"
    assert tags(SOURCE, digest) == ["v1.2.3"]
    assert tags(REPLICA, digest) == [quarantine_tag]  # the other copy has its own record: released separately
    record = DynamoAuditStore(aws.outputs["AuditTableName"], SOURCE, aws.clients["dynamodb"]).get(REPOSITORY, digest)
    assert record is not None
    assert str(record.status) == "RELEASED"

    # the same request without account/region acts in the deployment's own registry, which has no such image
    answer = admin_entry.process({**release, "account": None, "region": None}, admin_settings(aws), account=CENTRAL)
    assert answer["ok"] is False
    assert answer["error"]["type"] == "rejected", answer


def test_a_single_account_admin_function_refuses_another_registry(aws: Env) -> None:
    plain = admin_settings(aws).model_copy(update={"member_role_name": ""})
    base = {"action": "exempt", "operation": "list", "by": "alice"}
    for extra, field in (({"account": SOURCE.account}, "account"), ({"region": "us-west-2"}, "region"),
                         ({"account": "12"}, "account"), ({"region": "evil.example.com"}, "region")):  # fmt: skip
        answer = admin_entry.process({**base, **extra}, plain, account=CENTRAL)
        assert answer["ok"] is False, extra
        assert answer["error"]["field"] == field, answer
    assert admin_entry.process({**base, "account": CENTRAL, "region": "us-east-1"}, plain, account=CENTRAL)["ok"]


def test_a_member_registry_the_role_cant_open_is_a_one_line_refusal_not_a_crash(organization: Env) -> None:
    """An account outside the organization (or without the member stack) refuses the member role: the admin
    function says so in one line and changes nothing; it doesn't fail the invocation (which Lambda would retry)."""
    from botocore.exceptions import ClientError

    def refused(*_: Any) -> Any:
        error = {"Error": {"Code": "AccessDenied", "Message": "not authorized to perform: sts:AssumeRole"}}
        raise ClientError(error, "AssumeRole")  # type: ignore[arg-type]

    request = {"action": "exempt", "operation": "list", "by": "alice", "account": "555555555555",
               "region": "us-east-1"}  # fmt: skip
    answer = admin_entry.process(request, admin_settings(organization), account=CENTRAL, tools_factory=refused)
    assert answer["ok"] is False
    assert answer["error"]["type"] == "rejected"
    assert answer["error"]["message"].startswith("555555555555/us-east-1 can't be reached: AccessDenied")
    with pytest.raises(ClientError):  # its own registry unreachable is an error of the deployment: it propagates
        admin_entry.process({**request, "account": None, "region": None}, admin_settings(organization),
                            account=CENTRAL, tools_factory=refused)  # fmt: skip
