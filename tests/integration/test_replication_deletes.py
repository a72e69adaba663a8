"""Replicas (issue 12): ECR replicates tag removals only for a replication rule with `deleteReplication`, so a
quarantine in the source leaves the replicas' tags deployable without it. The settings guard reports every rule that
copies a managed repository elsewhere without it; it never writes the registry's replication configuration.

botocore's model (1.43.127 here) has no `deleteReplication` member, so boto3 can neither send it nor parse it:
moto's registry state is set directly, as ECR would answer DescribeRegistry, and the adapter reads the raw answer."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from ecr_warden import runtime
from ecr_warden.adapters import aws as aws_clients
from ecr_warden.adapters.repository_settings import EcrSettingsRegistry
from ecr_warden.repository_settings import entry
from ecr_warden.repository_settings.desired import SettingsProfile
from ecr_warden.repository_settings.evaluate import with_replication
from ecr_warden.repository_settings.state import Plan, ReplicationRule
from ecr_warden.settings import SettingsGuardSettings
from tests.conftest import load_event
from tests.events import ACCOUNT
from tests.integration.conftest import Env

REPO = "ses-base/api-server"
SECOND_ACCOUNT = "987654321098"


def guide_rule(deletes: bool | None) -> dict[str, Any]:
    """The operations guide's rule: ses-base/ to us-west-2 and to a second account (ap-northeast-1)."""
    rule: dict[str, Any] = {
        "destinations": [
            {"region": "us-west-2", "registryId": ACCOUNT},
            {"region": "ap-northeast-1", "registryId": SECOND_ACCOUNT},
        ],
        "repositoryFilters": [{"filter": "ses-base/", "filterType": "PREFIX_MATCH"}],
    }
    if deletes is not None:
        rule["deleteReplication"] = {"enabled": deletes}
    return rule


def set_replication(monkeypatch: pytest.MonkeyPatch, *rules: dict[str, Any]) -> None:
    """What ECR answers to DescribeRegistry. moto serializes its answers through botocore's model too, which drops
    deleteReplication, so its handler is replaced by ECR's JSON."""
    from moto.ecr.responses import ECRResponse

    body = json.dumps({"registryId": ACCOUNT, "replicationConfiguration": {"rules": [copy.deepcopy(r) for r in rules]}})
    monkeypatch.setattr(ECRResponse, "describe_registry", lambda _self: body)


def test_botocore_here_does_not_model_delete_replication() -> None:
    """The reason the adapter reads the raw response; when botocore learns the member, both paths agree."""
    import botocore.session

    members = botocore.session.get_session().get_service_model("ecr").shape_for("ReplicationRule").members
    assert "destinations" in members
    if "deleteReplication" in members:
        pytest.skip("this botocore models deleteReplication: the parsed response carries it too")


@pytest.mark.parametrize(("deletes", "expected"), [(None, False), (False, False), (True, True)])
def test_the_adapter_reads_delete_replication_from_ecrs_answer(
    aws: Env, monkeypatch: pytest.MonkeyPatch, deletes: bool | None, expected: bool
) -> None:
    set_replication(monkeypatch, guide_rule(deletes))
    [rule] = EcrSettingsRegistry(aws.ecr).registry_replication() or ()
    assert rule == ReplicationRule(
        (f"{ACCOUNT}/us-west-2", f"{SECOND_ACCOUNT}/ap-northeast-1"), ("ses-base/",), expected
    )
    assert rule.covers(REPO)
    assert not rule.covers("team-b/web")


def test_no_replication_configured_reports_nothing(aws: Env) -> None:
    assert EcrSettingsRegistry(aws.ecr).registry_replication() == ()


def _plan() -> Plan:
    return Plan(REPO, "default")


def test_only_rules_that_copy_the_repository_without_deletes_are_reported() -> None:
    profile = SettingsProfile(name="default", repositories=["*"])
    without = ReplicationRule(("987654321098/us-west-2",), ("ses-base/",), deletes=False)
    with_deletes = ReplicationRule(("987654321098/us-west-2",), ("ses-base/",), deletes=True)
    elsewhere = ReplicationRule(("987654321098/us-west-2",), ("team-b/",), deletes=False)
    [gap] = with_replication(_plan(), profile, (with_deletes, without, elsewhere)).reports
    assert gap.startswith("replication rule 2 copies it to 987654321098/us-west-2 without deleteReplication")
    assert with_replication(_plan(), profile, (with_deletes, elsewhere)).compliant
    assert with_replication(_plan(), profile, None).compliant  # the registry did not say
    ignoring = SettingsProfile(name="dr", repositories=["*"], replication_deletes="ignore")
    assert with_replication(_plan(), ignoring, (without,)).compliant


def _settings(aws: Env) -> SettingsGuardSettings:
    return SettingsGuardSettings(
        audit_table_name=aws.outputs["AuditTableName"],
        decision_bus_name=aws.outputs["DecisionBusName"],
        reconcile_queue_url=aws.outputs["SettingsReconcileQueueUrl"],
        dead_letter_queue_url=aws.outputs["SettingsGuardDeadLetterQueueUrl"],
        policy_parameter_name=aws.outputs["PolicyParameterName"],
    )


@pytest.mark.parametrize("deletes", [False, True])
def test_the_guard_reports_a_replicated_repository_whose_quarantine_would_not_reach_the_copies(
    aws: Env, monkeypatch: pytest.MonkeyPatch, deletes: bool
) -> None:
    aws_clients.reset_clients()
    runtime.forget_policy_sources()
    try:
        set_replication(monkeypatch, guide_rule(deletes))
        aws.ecr.create_repository(repositoryName=REPO)
        raw = load_event("cloudtrail-create-repository-defaults.json")
        raw["detail"]["requestParameters"] = {**(raw["detail"].get("requestParameters") or {}), "repositoryName": REPO}
        outcome = entry.process(raw, _settings(aws))
    finally:
        aws_clients.reset_clients()
    assert outcome["repository"] == REPO
    reported = "without deleteReplication" in outcome["reason"]
    assert reported is not deletes, outcome["reason"]
    if not deletes:
        [decision] = aws.decisions()
        assert any("us-west-2" in r and "without deleteReplication" in r for r in decision["reasons"])
