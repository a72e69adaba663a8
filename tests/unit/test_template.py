"""The template against the code: runtimes, per-function roles, IAM that mirrors what adapters need, and rule
patterns that select exactly the sample events each function handles."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecr_warden import actions
from ecr_warden.gate import entry as gate_entry
from ecr_warden.notify import entry as notifier_entry
from ecr_warden_tools.local import moto_patches
from ecr_warden_tools.local.template import load_template
from tests.conftest import EVENTS, TEMPLATE, adapter_iam, load_event

TEMPLATE_DOC = load_template(TEMPLATE)
FUNCTIONS = {
    name: spec for name, spec in TEMPLATE_DOC["Resources"].items() if spec["Type"] == "AWS::Serverless::Function"
}


def test_globals_target_python313_arm64() -> None:
    function_globals = TEMPLATE_DOC["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Tracing"] == "Active"
    assert {"POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"} <= set(function_globals["Environment"]["Variables"])


def _role(function: str) -> dict[str, Any]:
    role = FUNCTIONS[function]["Properties"]["Role"]
    assert set(role) == {"Fn::GetAtt"}, f"{function}: Role must be !GetAtt X.Arn"
    assert role["Fn::GetAtt"][1] == "Arn", f"{function}: Role must be !GetAtt X.Arn"
    resource: dict[str, Any] = TEMPLATE_DOC["Resources"][role["Fn::GetAtt"][0]]
    assert resource["Type"] == "AWS::IAM::Role"
    return resource


def _statements(function: str, *, runtime: bool = False) -> list[dict[str, Any]]:
    """The role's statements: its own (what the code declares), or with `runtime` the Lambda basics too."""
    policies = _role(function)["Properties"]["Policies"]
    return [
        statement
        for policy in policies
        if runtime or policy["PolicyName"] != "runtime"
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def test_every_function_has_a_role_of_its_own_and_a_service_name() -> None:
    roles = [FUNCTIONS[name]["Properties"]["Role"]["Fn::GetAtt"][0] for name in FUNCTIONS]
    assert len(set(roles)) == len(roles), "one role per function"
    for name, spec in FUNCTIONS.items():
        props = spec["Properties"]
        assert "Policies" not in props, f"{name}: SAM would attach managed policies with '*' resources; use its Role"
        assert not _role(name)["Properties"].get("ManagedPolicyArns"), f"{name}: no managed policies"
        assert props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        assert not (TEMPLATE.parent / props["CodeUri"] / "requirements.txt").exists(), "deps belong in the layer"


def _actions(function: str) -> set[str]:
    return {action for statement in _statements(function) for action in statement["Action"]}


def _declared(adapters: tuple[type | str, ...], remediations: tuple[str, ...] = ()) -> frozenset[str]:
    """What a function's adapters (their module's IAM_ACTIONS) and remediation actions declare they need."""
    return adapter_iam(adapters) | actions.permissions_of(*remediations)


def test_scan_gate_iam_mirrors_its_adapters_and_actions() -> None:
    needed = _declared(gate_entry.ADAPTERS, gate_entry.REMEDIATIONS)
    granted = _actions("ScanGateFunction")
    assert needed <= granted, f"missing: {needed - granted}"
    assert granted == needed, f"more than needed: {granted - needed}"


def test_admin_function_iam_mirrors_its_adapters_actions_and_the_settings_guards_writes() -> None:
    from ecr_warden.admin import entry as admin_entry
    from ecr_warden.repository_settings import actions as settings_actions

    needed = _declared(admin_entry.ADAPTERS, admin_entry.REMEDIATIONS) | settings_actions.permissions(False)
    granted = _actions("AdminFunction")
    assert granted == needed, f"missing: {needed - granted}; more than needed: {granted - needed}"
    assert set(admin_entry.REMEDIATIONS) == set(actions.load_all())


def test_admin_function_writes_only_governed_repositories_and_people_may_only_invoke_it() -> None:
    writes = [s for s in _statements("AdminFunction") if "ecr:PutImage" in s["Action"]]
    assert len(writes) == 1
    assert "${GovernedRepositories}" in json.dumps(writes[0]["Resource"])
    # its own account's registries: this region, or (organization mode, runs over OrganizationRegions) every region
    template, names = writes[0]["Resource"]["Fn::Sub"]
    assert template.startswith("arn:${AWS::Partition}:ecr:${Regions}:${AWS::AccountId}:")
    assert names == {"Regions": {"Fn::If": ["OrganizationEnabled", "*", {"Ref": "AWS::Region"}]}}
    props = FUNCTIONS["AdminFunction"]["Properties"]
    # invoked by people and the CLI, by two schedules (the daily read-only sweep; organization mode: the daily
    # reconcile run) and by its own run queue's steps (no event of any other kind)
    events = props["Events"]
    assert set(events) == {"DailySweep", "DailyOrganizationReconcile", "RunSteps"}
    from ecr_warden.actions.run import AdminRun
    from ecr_warden.actions.sweep import AdminSweep
    from ecr_warden.admin.requests import parse

    sweep = events["DailySweep"]
    assert sweep["Type"] == "ScheduleV2"
    organization, single = sweep["Properties"]["Input"]["Fn::If"][1:]
    request = parse(json.loads(single))
    assert isinstance(request, AdminSweep)
    assert (request.reason, request.by, request.follow, request.apply) == ("daily sweep", "schedule", True, False)
    run = parse(json.loads(organization))
    assert isinstance(run, AdminRun)
    assert (run.operation, run.job, run.accounts, run.by) == ("start", "sweep", "organization", "schedule")
    reconcile = events["DailyOrganizationReconcile"]["Properties"]
    assert reconcile["State"] == {"Fn::If": ["OrganizationEnabled", "ENABLED", "DISABLED"]}
    run = parse(json.loads(reconcile["Input"]))
    assert isinstance(run, AdminRun)
    assert (run.operation, run.job, run.accounts) == ("start", "reconcile", "organization")
    steps = events["RunSteps"]
    assert steps["Properties"]["Queue"] == {"Fn::GetAtt": ["RunQueue", "Arn"]}
    assert steps["Properties"]["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "RunConcurrency"}
    queue = TEMPLATE_DOC["Resources"]["RunQueue"]["Properties"]
    assert queue["FifoQueue"] is True  # one message group per registry: one caller per registry at a time
    invoke_self = [s for s in _statements("AdminFunction") if "lambda:InvokeFunction" in s["Action"]]
    assert [s["Action"] for s in invoke_self] == [["lambda:InvokeFunction"]]
    assert invoke_self[0]["Resource"]["Fn::Sub"].endswith(":function:ecr-warden-${EnvironmentName}-admin")
    assert TEMPLATE_DOC["Outputs"]["AdminFunctionName"]["Value"] == {"Ref": "AdminFunction"}
    document = json.loads((TEMPLATE.parent / "docs" / "admin-policy.json").read_text(encoding="utf-8"))
    statements = document["Statement"]
    assert [(s["Effect"], s["Action"]) for s in statements] == [("Allow", "lambda:InvokeFunction")]
    function_name = props["FunctionName"]["Fn::Sub"].replace("${EnvironmentName}", "ENVIRONMENT")
    assert statements[0]["Resource"].endswith(f":function:{function_name}")


def test_notifier_iam_mirrors_its_adapters_and_never_touches_ecr() -> None:
    granted = _actions("NotifierFunction")
    assert granted == _declared(notifier_entry.ADAPTERS)
    assert not any(action.startswith("ecr:") for action in granted)


def test_every_remediation_action_declares_its_input_and_permissions() -> None:
    assert set(actions.load_all()) == set(actions.MODULES)
    for name, action in actions.load_all().items():
        assert action.name == name
        assert action.permissions, f"{name} declares no IAM permissions"
        assert all(":" in permission for permission in action.permissions)
        assert action.input_model.model_json_schema()["properties"], f"{name} has no input fields"
        tag = action.admin_model.model_json_schema()["properties"]["action"]
        assert tag["const"] == name, f"{name}: its admin payload is tagged {tag}"
        assert issubclass(action.admin_model, action.input_model)


# Actions whose service offers no resource-level permissions: "*" is the only Resource IAM accepts for them.
UNSCOPABLE = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_write_actions_are_scoped(function: str) -> None:
    for statement in _statements(function, runtime=True):
        writes = [
            a
            for a in statement["Action"]
            if not a.split(":")[1].startswith(("Get", "Describe", "List", "BatchGet", "Query")) and a not in UNSCOPABLE
        ]
        if writes:
            assert statement["Resource"] != "*", statement["Sid"]


def _matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    moto_patches.apply()
    from moto.events.models import EventPattern

    return bool(EventPattern(json.dumps(pattern), pattern).matches_event(event))


def _patterns(function: str) -> list[dict[str, Any]]:
    events = FUNCTIONS[function]["Properties"]["Events"].values()
    return [event["Properties"]["Pattern"] for event in events if event["Type"] == "EventBridgeRule"]


GATE_EVENTS = {
    "ecr-image-action-push.json",
    "ecr-image-action-push-untagged.json",
    "ecr-image-action-push-index.json",
    "ecr-image-action-push-index-child-amd64.json",
    "ecr-image-action-push-index-child-arm64.json",
    "ecr-image-action-push-empty-tag.json",
    "ecr-image-scan-complete.json",
    "ecr-image-scan-clean.json",
    "ecr-image-scan-failed.json",
    "inspector2-scan-critical.json",
    "inspector2-scan-clean.json",
    "inspector2-scan-missing-counts.json",
    "inspector2-scan-arn-with-digest.json",
    "inspector2-finding-critical-active.json",
    "inspector2-finding-closed.json",
}


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS.glob("*.json")))
def test_rules_select_exactly_each_functions_events(name: str) -> None:
    gate = any(_matches(pattern, load_event(name)) for pattern in _patterns("ScanGateFunction"))
    notifier = any(_matches(pattern, load_event(name)) for pattern in _patterns("NotifierFunction"))
    assert gate is (name in GATE_EVENTS)
    assert notifier is name.startswith("ecr-warden-decision")


# Every resource type Inspector scans (botocore's inspector2 ResourceType/CoverageResourceType enums).
INSPECTOR_RESOURCE_TYPES = [
    "AWS_EC2_INSTANCE",
    "AWS_ECR_REPOSITORY",
    "AWS_LAMBDA_FUNCTION",
    "CODE_REPOSITORY",
    "MACHINE_IMAGE",
    "Microsoft.Compute/virtualMachines",
    "Microsoft.ContainerRegistry/registry/containerImage",
    "Microsoft.ContainerRegistry/registry/containerRepository",
    "Microsoft.ContainerRegistry/registries",
    "Microsoft.Web/sites",
]


@pytest.mark.parametrize("resource_type", INSPECTOR_RESOURCE_TYPES)
def test_scans_and_findings_of_other_resources_never_reach_the_gate(resource_type: str) -> None:
    resource_id = f"{resource_type.lower()}/example-1"
    finding = load_event("inspector2-finding-critical-active.json")
    finding["resources"] = [resource_id]
    finding["detail"]["resources"] = [{"type": resource_type, "id": resource_id}]
    scan = load_event("inspector2-scan-critical.json")
    scan["resources"] = [resource_id]
    for key in ("repository-name", "image-digest", "image-tags"):
        scan["detail"].pop(key)
    for event in (finding, scan):
        assert not any(_matches(p, event) for p in _patterns("ScanGateFunction")), resource_type
    # a scan that names a repository outside ECR (another registry) does not match either
    scan["detail"].update({"repository-name": f"{resource_id}/repo", "image-digest": "sha256:" + "1" * 64})
    assert not any(_matches(p, scan) for p in _patterns("ScanGateFunction"))


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
def test_ecr_scans_match_in_every_partition(partition: str) -> None:
    scan = load_event("inspector2-scan-critical.json")
    scan["detail"]["repository-name"] = f"arn:{partition}:ecr:us-east-1:123456789012:repository/ses-base/api-server"
    assert any(_matches(p, scan) for p in _patterns("ScanGateFunction"))


def test_finding_rule_ignores_non_container_findings() -> None:
    raw = load_event("inspector2-finding-critical-active.json")
    raw["detail"]["resources"] = [{"type": "AWS_LAMBDA_FUNCTION", "id": "arn:aws:lambda:us-east-1:1:function:f"}]
    assert not any(_matches(p, raw) for p in _patterns("ScanGateFunction"))


def test_outputs_name_everything_the_cli_needs() -> None:
    assert {
        "DecisionsTopicArn",
        "AuditTableName",
        "DecisionBusName",
        "ScanGateFunctionName",
        "SlackWebhookSecretArn",
        "PolicyParameterName",
    } <= set(TEMPLATE_DOC["Outputs"])


# --- the settings guard -----------------------------------------------------------------------------------------


def test_settings_guard_iam_mirrors_its_adapters_and_actions() -> None:
    from ecr_warden.repository_settings import actions as settings_actions
    from ecr_warden.repository_settings import entry as settings_entry

    needed = _declared(settings_entry.ADAPTERS) | settings_actions.permissions(registry_level=False)
    granted = _actions("SettingsGuardFunction")
    assert granted == needed, f"missing: {needed - granted}; more than needed: {granted - needed}"


def test_settings_guard_writes_only_managed_repositories_and_the_registry_only_when_enabled() -> None:
    from ecr_warden.repository_settings import actions as settings_actions

    writes = [s for s in _statements("SettingsGuardFunction") if any(a.startswith("ecr:Put") for a in s["Action"])]
    assert all("${GovernedRepositories}" in json.dumps(s["Resource"]) for s in writes)
    registry = TEMPLATE_DOC["Resources"]["SettingsGuardRegistryScanningPolicy"]
    assert registry["Condition"] == "SettingsRegistryWritesEnabled"
    assert registry["Properties"]["Roles"] == [{"Ref": "SettingsGuardFunctionRole"}]
    granted = {a for s in registry["Properties"]["PolicyDocument"]["Statement"] for a in s["Action"]}
    assert granted == settings_actions.permissions(registry_level=True) - settings_actions.permissions(False)


def test_settings_guard_knows_its_own_role_and_reconciles_on_a_schedule() -> None:
    from ecr_warden.repository_settings.entry import ReconcileRequest

    props = FUNCTIONS["SettingsGuardFunction"]["Properties"]
    assert props["Environment"]["Variables"]["OWN_ROLE_ARNS"] == props["Role"]
    schedule = props["Events"]["DailyReconcile"]
    assert schedule["Type"] == "ScheduleV2"
    text = schedule["Properties"]["Input"]["Fn::Sub"].replace("${AWS::AccountId}", "123456789012")
    assert ReconcileRequest.model_validate(json.loads(text)).account == "123456789012"


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS.glob("*.json")))
def test_settings_guard_rule_selects_exactly_the_cloudtrail_events(name: str) -> None:
    event = load_event(name)
    matched = any(_matches(pattern, event) for pattern in _patterns("SettingsGuardFunction"))
    assert matched is name.startswith("cloudtrail-")
    if name.startswith("cloudtrail-"):
        event["detail"]["errorCode"] = "AccessDenied"  # a failed call changed nothing
        assert not any(_matches(pattern, event) for pattern in _patterns("SettingsGuardFunction"))
