"""Least privilege, read from the template as CloudFormation deploys it (after the SAM transform).

SAM attaches managed policies (AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess,
AWSLambdaSQSQueueExecutionRole: logs, traces and sqs:ReceiveMessage/DeleteMessage on "*") to roles it generates;
they don't appear in template.yaml, so these checks run on the expanded template.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEMPLATE

EXPAND = Path(__file__).resolve().parents[1] / "sam_expand.py"

# Actions IAM only accepts with Resource "*", each with the reason.
STAR_ALLOWED = {
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions",
    "inspector2:ListFindings": "Inspector list actions have no resource-level permissions",
    "inspector2:ListCoverage": "Inspector list actions have no resource-level permissions",
    "ecr:GetRegistryScanningConfiguration": "a registry-level read: no resource type",
    "ecr:DescribeRegistry": "a registry-level read: no resource type",
    "ecr:DescribePullThroughCacheRules": "a registry-level read: no resource type",
    "ecr:DescribeRepositoryCreationTemplates": "a registry-level read: no resource type",
}
QUEUE_CONSUMER_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}


def _sam_python() -> str:
    sam = shutil.which("sam")
    assert sam, "sam CLI not on PATH: run the tests through `make test`, which installs it"
    shebang = Path(sam).read_text(encoding="utf-8", errors="replace").splitlines()[0]
    assert shebang.startswith("#!"), f"{sam}: not a Python entry point"
    return shebang[2:].strip()


def expand(template_text: str, tmp_dir: Path) -> dict[str, Any]:
    source = tmp_dir / "template.yaml"
    source.write_text(template_text, encoding="utf-8")
    completed = subprocess.run(
        [_sam_python(), str(EXPAND), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    document: dict[str, Any] = json.loads(completed.stdout)
    return document


@cache
def _expanded_project_template(tmp: str) -> dict[str, Any]:
    return expand(TEMPLATE.read_text(encoding="utf-8"), Path(tmp))


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _expanded_project_template(str(tmp_path_factory.mktemp("sam-expand")))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _queue_sources(resources: dict[str, Any], function: str) -> list[Any]:
    return [
        spec["Properties"]["EventSourceArn"]
        for spec in resources.values()
        if spec["Type"] == "AWS::Lambda::EventSourceMapping" and spec["Properties"]["FunctionName"] == {"Ref": function}
    ]


def violations(document: dict[str, Any]) -> list[str]:
    """Everything in a deployed template that grants more than a function needs; empty when least-privileged."""
    resources: dict[str, Any] = document["Resources"]
    found: list[str] = []
    for name, spec in resources.items():
        if spec["Type"] != "AWS::Lambda::Function":
            continue
        role_ref = spec["Properties"]["Role"]
        role_id = role_ref["Fn::GetAtt"][0]
        role = resources[role_id]["Properties"]
        found += [f"{role_id}: managed policy {arn}" for arn in role.get("ManagedPolicyArns") or []]
        trusted = [s["Principal"] for s in role["AssumeRolePolicyDocument"]["Statement"]]
        if trusted != [{"Service": ["lambda.amazonaws.com"]}] and trusted != [{"Service": "lambda.amazonaws.com"}]:
            found.append(f"{role_id}: trusted by {trusted}")
        sources = _queue_sources(resources, name)
        for policy in role.get("Policies") or []:
            for statement in policy["PolicyDocument"]["Statement"]:
                found += _statement_violations(role_id, statement, sources)
    return found


def _statement_violations(role_id: str, statement: dict[str, Any], queue_sources: list[Any]) -> list[str]:
    sid = statement.get("Sid", "?")
    actions = _as_list(statement["Action"])
    resources = _as_list(statement["Resource"])
    found: list[str] = []
    if any("*" in action for action in actions):
        found.append(f"{role_id}/{sid}: wildcard action {actions}")
    if "*" in resources:
        found += [f"{role_id}/{sid}: {a} on '*'" for a in actions if a not in STAR_ALLOWED]
    consumed = QUEUE_CONSUMER_ACTIONS & set(actions)
    if consumed and not all(resource in queue_sources for resource in resources):
        found.append(f"{role_id}/{sid}: {sorted(consumed)} beyond the function's own event-source queues")
    if "logs:CreateLogGroup" in actions:
        found.append(f"{role_id}/{sid}: creates log groups (the template owns them, with retention)")
    return found


def test_deployed_roles_grant_only_what_the_functions_need(deployed: dict[str, Any]) -> None:
    assert violations(deployed) == []


def test_every_function_logs_to_its_own_log_group_with_retention(deployed: dict[str, Any]) -> None:
    resources = deployed["Resources"]
    functions = {n: s for n, s in resources.items() if s["Type"] == "AWS::Lambda::Function"}
    assert functions
    for name, spec in functions.items():
        group_ref = spec["Properties"]["LoggingConfig"]["LogGroup"]
        group = resources[group_ref["Ref"]]
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["RetentionInDays"], name
        role = resources[spec["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
        log_statements = [
            s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"] if "logs:PutLogEvents" in s["Action"]
        ]
        assert [s["Resource"] for s in log_statements] == [{"Fn::GetAtt": [group_ref["Ref"], "Arn"]}], name


def test_dead_letter_queues_keep_parked_events_when_the_stack_is_deleted(deployed: dict[str, Any]) -> None:
    resources = deployed["Resources"]
    for name, spec in resources.items():
        if spec["Type"] == "AWS::SQS::Queue" and name.endswith("DeadLetterQueue"):
            assert spec.get("DeletionPolicy") == "Retain", name
            assert spec.get("UpdateReplacePolicy") == "Retain", name


# A function written the convenient way: SAM generates its role and attaches its managed policies.
SAM_GENERATED_ROLE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Function:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.13
      Handler: app.handler
      CodeUri: functions/x
      Tracing: Active
      Policies:
        - Statement:
            - Effect: Allow
              Action: [ecr:PutImage]
              Resource: "*"
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
"""


def test_the_check_catches_what_sam_adds_on_its_own(tmp_path: Path) -> None:
    found = violations(expand(SAM_GENERATED_ROLE, tmp_path))
    assert any("AWSLambdaBasicExecutionRole" in f for f in found), found
    assert any("AWSLambdaSQSQueueExecutionRole" in f for f in found), found
    assert any("AWSXrayWriteOnlyAccess" in f for f in found), found
    assert any("ecr:PutImage on '*'" in f for f in found), found
