"""The organization deployment (docs/ORGANIZATION.md) against the code: member.yaml's role grants exactly what the
scan gate's and the settings guard's ECR, Inspector and KMS adapters declare (the rest stays central), its rules
forward exactly what the central functions' rules select, and template.yaml adds nothing cross-account unless
OrganizationId is set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ecr_warden import actions
from ecr_warden.admin import entry as admin_entry
from ecr_warden.gate import entry as gate_entry
from ecr_warden.repository_settings import actions as settings_actions
from ecr_warden.repository_settings import entry as settings_entry
from ecr_warden_tools.local.template import Resolver, load_template, parameter_defaults
from tests.conftest import TEMPLATE, adapter_iam

MEMBER = load_template(Path(TEMPLATE).parent / "member.yaml")
CENTRAL = load_template(TEMPLATE)
# Services the member role may be granted: the registries and their scanners live in the member account. The audit
# table, queues, decision bus, topic, secrets and policy parameter are the central account's, reached with the
# functions' own credentials.
MEMBER_SERVICES = ("ecr:", "inspector2:", "kms:")


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


def test_member_role_grants_exactly_what_the_gate_settings_guard_and_admin_declare_for_a_registry() -> None:
    gate = adapter_iam(gate_entry.ADAPTERS) | actions.permissions_of(*gate_entry.REMEDIATIONS)
    guard = adapter_iam(settings_entry.ADAPTERS) | settings_actions.permissions(registry_level=False)
    # the admin function: its requests may name a member's registry, and its runs (reconcile, sweep, report)
    runs = adapter_iam(admin_entry.ADAPTERS) | actions.permissions_of(*admin_entry.REMEDIATIONS)
    needed = {a for a in gate | guard | runs if a.startswith(MEMBER_SERVICES)}
    granted = _actions(_statements(MEMBER["Resources"]["MemberRole"]))
    assert granted == needed, f"missing: {needed - granted}; more than needed: {granted - needed}"
    central_only = {a for a in gate | guard | runs if not a.startswith(MEMBER_SERVICES)}
    assert central_only >= {"dynamodb:PutItem", "events:PutEvents", "sqs:SendMessage", "ssm:GetParameter"}
    assert not granted & central_only


def test_member_registry_writes_only_when_enabled_like_the_central_guard() -> None:
    policy = MEMBER["Resources"]["MemberRegistryScanningPolicy"]
    assert policy["Condition"] == "RegistryWrites"
    assert policy["Properties"]["Roles"] == [{"Ref": "MemberRole"}]
    granted = _actions(policy["Properties"]["PolicyDocument"]["Statement"])
    assert granted == settings_actions.permissions(registry_level=True) - settings_actions.permissions(False)


def test_member_writes_only_governed_repositories_of_its_own_account() -> None:
    for statement in _statements(MEMBER["Resources"]["MemberRole"]):
        writes = [
            a for a in _actions([statement]) if a.split(":")[1].startswith(("Put", "Batch", "Update", "Set", "Tag"))
        ]
        writes = [a for a in writes if a != "ecr:BatchGetImage"]
        if writes:
            resource = json.dumps(statement["Resource"])
            assert "${AWS::AccountId}:repository/${GovernedRepositories}" in resource, statement["Sid"]


def test_member_role_trusts_only_the_central_functions_of_the_organization_in_one_region() -> None:
    role = MEMBER["Resources"]["MemberRole"]
    assert role["Condition"] == "InRoleRegion"  # IAM is global: one stack instance creates it
    assert role["Properties"]["RoleName"] == {"Ref": "MemberRoleName"}
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Ref": "CentralRoleArns"}}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == {"Ref": "OrganizationId"}
    assert not role["Properties"].get("ManagedPolicyArns")


def _function_patterns(*functions: str) -> list[dict[str, Any]]:
    found = []
    for name in functions:
        for event in CENTRAL["Resources"][name]["Properties"]["Events"].values():
            if event["Type"] == "EventBridgeRule" and "EventBusName" not in event["Properties"]:
                found.append(event["Properties"]["Pattern"])
    return found


def test_member_rules_forward_exactly_what_the_central_functions_select() -> None:
    rules = {n: r for n, r in MEMBER["Resources"].items() if r["Type"] == "AWS::Events::Rule"}
    forwarded = [r["Properties"]["EventPattern"] for r in rules.values()]
    central = _function_patterns("ScanGateFunction", "SettingsGuardFunction")
    key = lambda p: json.dumps(p, sort_keys=True)  # noqa: E731
    assert sorted(map(key, forwarded)) == sorted(map(key, central))
    for name, rule in rules.items():
        [target] = rule["Properties"]["Targets"]
        assert target["Arn"] == {
            "Fn::Sub": "arn:${AWS::Partition}:events:${CentralRegion}:${CentralAccountId}:event-bus/default"
        }, name
        assert target["RoleArn"] == {"Fn::GetAtt": ["ForwardEventsRole", "Arn"]}, name


def test_forwarding_role_may_only_put_events_on_the_central_bus() -> None:
    role = MEMBER["Resources"]["ForwardEventsRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    [statement] = _statements(MEMBER["Resources"]["ForwardEventsRole"])
    assert statement["Action"] == ["events:PutEvents"]
    assert "${CentralAccountId}:event-bus/default" in statement["Resource"]["Fn::Sub"]


def test_member_template_is_plain_cloudformation_for_stacksets() -> None:
    assert "Transform" not in MEMBER
    assert all(not r["Type"].startswith("AWS::Serverless::") for r in MEMBER["Resources"].values())


# --- template.yaml: the central side ---------------------------------------------------------------------------


def test_cross_account_resources_exist_only_with_an_organization() -> None:
    resources = CENTRAL["Resources"]
    assert CENTRAL["Parameters"]["OrganizationId"]["Default"] == ""
    bus = resources["OrganizationEventBusPolicy"]
    assert bus["Condition"] == "OrganizationEnabled"
    assert bus["Properties"]["EventBusName"] == "default"
    statement = bus["Properties"]["Statement"]
    assert statement["Action"] == "events:PutEvents"
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}

    access = resources["OrganizationMemberAccessPolicy"]
    assert access["Condition"] == "OrganizationEnabled"
    assert access["Properties"]["Roles"] == [{"Ref": "ScanGateFunctionRole"}, {"Ref": "SettingsGuardFunctionRole"}]
    [assume] = access["Properties"]["PolicyDocument"]["Statement"]
    assert assume["Action"] == ["sts:AssumeRole"]
    assert assume["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}"}
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}}
    # nowhere else: no function role may assume anything by itself
    for name, spec in resources.items():
        if spec["Type"] == "AWS::IAM::Role":
            assert "sts:" not in json.dumps(spec["Properties"].get("Policies") or []), name


def test_the_default_single_account_deployment_has_no_member_role_and_no_bus_policy() -> None:
    resolver = Resolver(CENTRAL, parameter_defaults(CENTRAL), "us-east-1", "123456789012")
    assert resolver.condition("OrganizationEnabled") is False
    env = resolver.resolve(CENTRAL["Globals"]["Function"]["Environment"]["Variables"]["MEMBER_ROLE_NAME"])
    assert env == ""  # the functions reach no other account
    organization = Resolver(
        CENTRAL, {**parameter_defaults(CENTRAL), "OrganizationId": "o-abcdefghij"}, "us-east-1", "123456789012"
    )
    assert organization.condition("OrganizationEnabled") is True
    variables = CENTRAL["Globals"]["Function"]["Environment"]["Variables"]
    assert organization.resolve(variables["MEMBER_ROLE_NAME"]) == "ecr-warden-member"
    assert organization.resolve(variables["WARDEN_ACCOUNT_ID"]) == "123456789012"


def test_runs_reach_members_through_the_member_role_and_list_accounts_only_in_organization_mode() -> None:
    from ecr_warden.adapters import organization

    policy = CENTRAL["Resources"]["OrganizationRunsPolicy"]
    assert policy["Condition"] == "OrganizationEnabled"
    assert policy["Properties"]["Roles"] == [{"Ref": "AdminFunctionRole"}]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert _actions(statements) == {"sts:AssumeRole"} | organization.IAM_ACTIONS
    [assume] = [s for s in statements if s["Action"] == ["sts:AssumeRole"]]
    assert assume["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}"}
    assert assume["Condition"]["StringEquals"]["aws:ResourceOrgID"] == {"Ref": "OrganizationId"}
    outputs = CENTRAL["Outputs"]
    assert outputs["AdminFunctionRoleArn"]["Condition"] == "OrganizationEnabled"
