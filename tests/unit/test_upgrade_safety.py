"""An upgrade never destroys data: every stateful resource of the deployed template (after the SAM transform) is
retained or has a documented reason not to be, and none released before changes its logical ID, type, name or key
(which makes CloudFormation delete or replace it). After `sam delete`, the retained ones can be imported back."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ecr_warden_tools.adopt import IDENTIFIERS, _exists, import_plan, retained_resources
from ecr_warden_tools.local import moto_patches
from ecr_warden_tools.local.provision import Provisioner
from ecr_warden_tools.local.template import Resolver, load_template, parameter_defaults
from tests.conftest import ROOT, TEMPLATE
from tests.events import ACCOUNT
from tests.unit.test_iam_expanded import expand

FIXTURE = json.loads((ROOT / "tests" / "fixtures" / "stateful-resources.json").read_text(encoding="utf-8"))
STATEFUL_TYPES = {
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::SSM::Parameter",
    "AWS::SecretsManager::Secret",
    "AWS::KMS::Key",
    "AWS::Logs::LogGroup",
    "AWS::S3::Bucket",
}
TEMPLATE_DOC = load_template(TEMPLATE)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return expand(TEMPLATE.read_text(encoding="utf-8"), tmp_path_factory.mktemp("sam-expand"))


def _name(spec: dict[str, Any]) -> str | None:
    properties = spec.get("Properties") or {}
    value = properties.get("TableName") or properties.get("QueueName")
    return value.get("Fn::Sub") if isinstance(value, dict) else value


def test_every_stateful_resource_is_retained_or_has_a_reason(deployed: dict[str, Any]) -> None:
    unclassified, unretained = [], []
    for logical_id, spec in deployed["Resources"].items():
        if spec["Type"] not in STATEFUL_TYPES:
            continue
        if logical_id in FIXTURE["retained"]:
            if spec.get("DeletionPolicy") != "Retain" or spec.get("UpdateReplacePolicy") != "Retain":
                unretained.append(logical_id)
        elif not FIXTURE["not_retained"].get(logical_id):
            unclassified.append(f"{logical_id} ({spec['Type']})")
    assert not unretained, f"DeletionPolicy and UpdateReplacePolicy must be Retain: {unretained}"
    assert not unclassified, (
        f"stateful resources neither retained nor explained in tests/fixtures/stateful-resources.json: {unclassified}"
    )


@pytest.mark.parametrize("logical_id", sorted(FIXTURE["retained"]))
def test_a_released_stateful_resource_keeps_its_logical_id_name_and_key(
    deployed: dict[str, Any], logical_id: str
) -> None:
    released = FIXTURE["retained"][logical_id]
    spec = deployed["Resources"].get(logical_id)
    assert spec is not None, (
        f"{logical_id} disappeared or was renamed: an upgrade would delete it from the stack (its data stays behind, "
        "orphaned) and create an empty one. Keep the logical ID."
    )
    assert spec["Type"] == released["Type"]
    assert _name(spec) == released["name"], f"{logical_id}: a new name replaces the resource on upgrade"
    if "KeySchema" in released:
        assert spec["Properties"]["KeySchema"] == released["KeySchema"], f"{logical_id}: a new key replaces the table"


def test_retained_resources_have_no_condition() -> None:
    """A condition that turns false would delete the resource from the stack on upgrade."""
    for logical_id in FIXTURE["retained"]:
        assert "Condition" not in TEMPLATE_DOC["Resources"][logical_id], logical_id


def test_not_retained_entries_still_exist_or_are_removed_from_the_fixture() -> None:
    stale = set(FIXTURE["not_retained"]) - set(TEMPLATE_DOC["Resources"])
    assert not stale, f"tests/fixtures/stateful-resources.json explains resources the template no longer has: {stale}"


# -- after `sam delete`: the retained resources are imported back --------------------------------------------------


@pytest.fixture
def left_behind() -> Iterator[Any]:
    """An account where a stack was deployed and deleted: what the provisioner created is what was retained."""
    moto_patches.apply()
    with mock_aws():
        resolver = Resolver(TEMPLATE_DOC, parameter_defaults(TEMPLATE_DOC), "us-east-1", ACCOUNT)
        Provisioner(lambda s: boto3.client(s, region_name="us-east-1"), TEMPLATE_DOC, TEMPLATE.parent, resolver).run()
        yield lambda service: boto3.client(service, region_name="us-east-1")


def test_the_import_plan_adopts_every_retained_resource_under_its_logical_id(left_behind: Any) -> None:
    document, to_import, missing = import_plan(TEMPLATE_DOC, "dev", "us-east-1", ACCOUNT, _exists(left_behind))
    assert missing == []
    assert set(document["Resources"]) == set(FIXTURE["retained"]) == set(retained_resources(TEMPLATE_DOC))
    identifiers = {r["LogicalResourceId"]: r["ResourceIdentifier"] for r in to_import}
    assert identifiers["AuditTable"] == {"TableName": "ecr-warden-dev-audit-v2"}
    assert identifiers["SlackDeadLetterQueue"]["QueueUrl"].endswith("/ecr-warden-dev-slack-dlq")
    for logical_id, resource in document["Resources"].items():
        assert resource["DeletionPolicy"] == "Retain", logical_id  # CloudFormation imports only with a policy
        assert resource["Type"] in IDENTIFIERS
        assert "${" not in json.dumps(resource), f"{logical_id}: resolved for the environment"
    assert (
        document["Resources"]["AuditTable"]["Properties"]["KeySchema"] == FIXTURE["retained"]["AuditTable"]["KeySchema"]
    )


def test_a_retained_resource_that_is_gone_is_left_to_sam_deploy(left_behind: Any) -> None:
    left_behind("dynamodb").delete_table(TableName="ecr-warden-dev-audit-v2")
    document, _, missing = import_plan(TEMPLATE_DOC, "dev", "us-east-1", ACCOUNT, _exists(left_behind))
    assert missing == ["AuditTable (ecr-warden-dev-audit-v2)"]
    assert "AuditTable" not in document["Resources"]


# -- the dashboard graphs what the code measures ---------------------------------------------------------------------


def test_every_dashboard_metric_of_the_functions_is_emitted_by_the_code() -> None:
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "layers" / "shared").rglob("*.py"))
    emitted = set(re.findall(r'(?:name|metric)="([A-Z][A-Za-z]+)"', code))
    emitted |= set(re.findall(r'"(Settings[A-Z][a-z]+)"', code))
    body = TEMPLATE_DOC["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    graphed = set(re.findall(r'\["ecr-warden", "([A-Za-z]+)"', body))
    assert graphed, "the dashboard graphs the functions' metrics"
    assert graphed <= emitted, f"graphed but never emitted: {graphed - emitted}"
    services = {s for s in re.findall(r'"service", "([a-z-]+)"', body)}
    declared = {
        spec["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for spec in TEMPLATE_DOC["Resources"].values()
        if spec["Type"] == "AWS::Serverless::Function"
    }
    assert services <= declared, "the service dimension is each function's POWERTOOLS_SERVICE_NAME"
    assert TEMPLATE_DOC["Resources"]["Dashboard"]["Properties"]["DashboardName"] == {
        "Fn::Sub": "ecr-warden-${EnvironmentName}"
    }


def test_the_doctor_policy_is_valid_json_with_read_only_actions() -> None:
    policy = json.loads(Path(ROOT / "docs" / "doctor-policy.json").read_text(encoding="utf-8"))
    assert policy["Version"] == "2012-10-17"
    assert all(statement["Effect"] == "Allow" for statement in policy["Statement"])
