"""`ecr-warden doctor` against moto in-process, with the resources of template.yaml provisioned as the local stack
provisions them: every check passes on a ready deployment, and each broken piece is a ✗ (or !) with its fix."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ecr_warden_tools import doctor
from ecr_warden_tools.doctor import Check, Doctor, RuleRef, Status, Target
from ecr_warden_tools.local import moto_patches
from ecr_warden_tools.local.provision import Provisioner
from ecr_warden_tools.local.template import Resolver, load_template, parameter_defaults
from tests.conftest import ROOT, TEMPLATE
from tests.events import ACCOUNT

REGION = "us-east-1"
WEBHOOK = "https://hooks.slack.com/services/T000/B000/doctor-secret-part"
RULES = sum(  # the template's EventBridge rules: one per EventBridgeRule event of a function
    event["Type"] == "EventBridgeRule"
    for spec in load_template(TEMPLATE)["Resources"].values()
    for event in (spec.get("Properties") or {}).get("Events", {}).values()
)
ALL_REPOSITORIES = [
    {"repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}], "scanFrequency": "CONTINUOUS_SCAN"}
]


class Calls:
    """Every AWS operation the doctor's clients make, as IAM actions (service:Operation)."""

    def __init__(self) -> None:
        self.actions: set[str] = set()
        self.clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self.clients:
            client = boto3.client(service, region_name=REGION)
            prefix = {"monitoring": "cloudwatch"}.get(client.meta.service_model.signing_name, service)
            client.meta.events.register(
                "before-call.*.*", lambda model, prefix=prefix, **_: self.actions.add(f"{prefix}:{model.name}")
            )
            self.clients[service] = client
        return self.clients[service]


class Env:
    def __init__(self, outputs: dict[str, str], clients: Calls) -> None:
        self.outputs, self.clients = outputs, clients

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)  # the test's own: not recorded

    def target(self) -> Target:
        return Target("dev", REGION, "local stack (test)", dict(self.outputs), local=True)

    def checks(self, **kwargs: Any) -> list[Check]:
        return Doctor(self.clients, self.target(), **kwargs).run()

    def ready(self) -> Env:
        """What an operator does after deploying: scanning for every repository, the Slack webhook."""
        self.client("ecr").put_registry_scanning_configuration(scanType="ENHANCED", rules=ALL_REPOSITORIES)
        self.set_webhook(json.dumps({"url": WEBHOOK}))
        return self

    def set_webhook(self, value: str) -> None:
        self.client("secretsmanager").put_secret_value(
            SecretId=self.outputs["SlackWebhookSecretArn"], SecretString=value
        )


def provision(parameters: dict[str, str] | None = None) -> dict[str, str]:
    template = load_template(TEMPLATE)
    resolver = Resolver(template, parameter_defaults(template) | (parameters or {}), REGION, ACCOUNT)
    return (
        Provisioner(lambda service: boto3.client(service, region_name=REGION), template, TEMPLATE.parent, resolver)
        .run()
        .outputs
    )


@pytest.fixture
def env() -> Iterator[Env]:
    moto_patches.apply()
    with mock_aws():
        yield Env(provision(), Calls())


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def failed(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status == Status.FAIL]


def test_a_ready_deployment_passes_every_required_check(env: Env) -> None:
    checks = env.ready().checks()
    assert failed(checks) == [], [c.lines() for c in failed(checks)]
    named = by_name(checks)
    for name in ("functions", "policy", "registry scanning", "Slack webhook", "EventBridge rules"):
        assert named[name].status == Status.OK, named[name]
    assert named["EventBridge rules"].detail == f"{RULES} of {RULES} enabled"
    assert "ENHANCED CONTINUOUS_SCAN covers" in named["registry scanning"].detail
    assert named["mode"].detail.startswith("enforce")
    # moto has no Inspector account status: a warning that says so, never a traceback or a failure
    inspector = named["Inspector ECR scanning"]
    assert inspector.status == Status.WARN
    assert "unknown (the endpoint does not answer BatchGetAccountStatus" in inspector.detail
    for queue in ("scan-gate", "notifier", "slack", "settings-guard"):
        assert named[f"dead-letter queue ecr-warden-dev-{queue}-dlq"].status == Status.OK
    assert "none recorded" in named["last decision"].detail
    assert named["CloudWatch alarms"].detail == "the local stack creates no alarms"


def test_no_scanning_rule_fails_with_the_command_that_adds_one_keeping_existing_rules(env: Env) -> None:
    env.ready()
    other = [{"repositoryFilters": [{"filter": "other/*", "filterType": "WILDCARD"}], "scanFrequency": "SCAN_ON_PUSH"}]
    env.client("ecr").put_registry_scanning_configuration(scanType="ENHANCED", rules=other)
    env.client("ecr").create_repository(repositoryName="ses-base/api-server")
    check = by_name(env.checks())["registry scanning"]
    assert check.status == Status.FAIL
    assert check.required
    assert "does not cover *, ses-base/api-server" in check.detail
    assert check.fix is not None
    command = re.search(r"--scan-type (\w+) --rules '(.*)'", check.fix)
    assert command is not None
    rules = json.loads(command[2])
    assert {r["scanFrequency"] for r in rules} == {"SCAN_ON_PUSH", "CONTINUOUS_SCAN"}, "the existing rule is kept"
    env.client("ecr").put_registry_scanning_configuration(scanType=command[1], rules=rules)  # the fix, as printed
    assert by_name(env.checks())["registry scanning"].status == Status.OK


def test_scanning_is_judged_against_the_policy_repositories(env: Env) -> None:
    env.ready()
    policy = json.loads(env.client("ssm").get_parameter(Name="/ecr-warden/dev/policy")["Parameter"]["Value"])
    policy["rules"][0]["repositories"] = ["ses-base/*"]
    env.client("ssm").put_parameter(Name="/ecr-warden/dev/policy", Value=json.dumps(policy), Overwrite=True)
    basic = [
        {"repositoryFilters": [{"filter": "ses-base/*", "filterType": "WILDCARD"}], "scanFrequency": "SCAN_ON_PUSH"}
    ]
    env.client("ecr").put_registry_scanning_configuration(scanType="BASIC", rules=basic)
    env.client("ecr").create_repository(repositoryName="unmanaged/thing")  # outside the policy: not needed
    checks = by_name(env.checks())
    assert checks["registry scanning"].status == Status.OK
    assert checks["continuous scanning"].status == Status.INFO
    assert checks["Inspector ECR scanning"].required is False, "BASIC scanning does not need Inspector"


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ('{"url": ""}', "is empty"),
        ("", "is empty"),
        ('{"webhook": "x"}', 'has no "url"'),
        ('{"url": "https://example.com/hook"}', 'has a malformed "url"'),
    ],
)
def test_an_unusable_slack_secret_fails_without_echoing_it(env: Env, value: str, what: str) -> None:
    env.ready()
    if value:
        env.set_webhook(value)
    else:
        env.set_webhook(" ")
    check = by_name(env.checks())["Slack webhook"]
    assert check.status == Status.FAIL
    assert what in check.detail
    assert check.fix is not None
    assert "put-secret-value" in check.fix
    assert "file://webhook.json" in check.fix
    assert "example.com" not in "\n".join(check.lines())


def test_the_webhook_url_never_appears_in_the_report(env: Env) -> None:
    lines = [line for check in env.ready().checks() for line in check.lines()]
    assert "doctor-secret-part" not in "\n".join(lines)


def test_a_test_message_is_sent_only_when_asked(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(
        "ecr_warden.adapters.slack.SlackWebhooks.post", lambda self, route, url, message: sent.append((url, message))
    )
    env.ready()
    assert "not sent" in by_name(env.checks())["Slack webhook"].detail
    assert sent == []
    assert by_name(env.checks(send_test_message=True))["Slack webhook"].detail.startswith("the test message was")
    assert sent[0][0] == WEBHOOK
    assert "ecr-warden doctor" in sent[0][1]["text"]


def test_a_disabled_rule_fails_with_the_enable_command(env: Env) -> None:
    env.ready()
    events = env.client("events")
    events.disable_rule(Name="ecr-warden-dev-notifier-Decisions", EventBusName="ecr-warden-dev")
    events.disable_rule(Name="ecr-warden-dev-scan-gate-ImagePushed")
    check = by_name(env.checks())["EventBridge rules"]
    assert check.status == Status.FAIL
    assert check.detail.startswith(f"2 of {RULES} not enabled")
    assert check.fix is not None
    assert (
        "aws events enable-rule --name ecr-warden-dev-notifier-Decisions --event-bus-name ecr-warden-dev" in check.fix
    )
    assert "aws events enable-rule --name ecr-warden-dev-scan-gate-ImagePushed\n" in check.fix + "\n"


def test_parked_messages_are_warnings_with_the_redrive_command(env: Env) -> None:
    env.ready()
    env.client("sqs").send_message(QueueUrl=env.outputs["SlackDeadLetterQueueUrl"], MessageBody="{}")
    checks = env.checks()
    check = by_name(checks)["dead-letter queue ecr-warden-dev-slack-dlq"]
    assert check.status == Status.WARN
    assert not check.required
    assert check.detail == "1 message(s) parked"
    assert check.fix is not None
    assert "ecr-warden slack-redrive --environment dev" in check.fix
    assert failed(checks) == []


def test_the_last_decision_is_read_from_the_status_index(env: Env) -> None:
    env.ready()
    table = env.outputs["AuditTableName"]
    for n, (status, when) in enumerate([("PASSED", "2026-11-01T10:00:00Z"), ("QUARANTINED", "2026-11-02T10:00:00Z")]):
        env.client("dynamodb").put_item(
            TableName=table,
            Item={
                "pk": {"S": f"{ACCOUNT}#{REGION}#ses-base/api-server"},
                "digest": {"S": f"sha256:{n:064d}"},
                "repository": {"S": "ses-base/api-server"},
                "status": {"S": status},
                "updated_at": {"S": when},
            },
        )
    check = by_name(env.checks())["last decision"]
    assert check.status == Status.INFO
    assert check.detail.startswith("QUARANTINED ses-base/api-server@sha256:0000000000")
    assert "2026-11-02T10:00:00Z" in check.detail


def test_audit_mode_is_reported() -> None:
    moto_patches.apply()
    with mock_aws():
        outputs = provision({"Mode": "audit"})
        assert by_name(Env(outputs, Calls()).checks())["mode"].detail.startswith("audit")


class FakeInspector:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def batch_get_account_status(self, accountIds: list[str]) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return {"accounts": [{"accountId": accountIds[0], "resourceState": {"ecr": {"status": self.answer}}}]}


@pytest.mark.parametrize(
    ("answer", "status", "text"),
    [
        ("ENABLED", Status.OK, "ENABLED in account"),
        ("DISABLED", Status.FAIL, "DISABLED in account"),
        ("ENABLING", Status.WARN, "ENABLING"),
        (NotImplementedError("BatchGetAccountStatus"), Status.WARN, "unknown (the endpoint does not answer"),
    ],
)
def test_inspector_status(env: Env, answer: Any, status: Status, text: str) -> None:
    env.ready()
    calls = env.clients

    def clients(service: str) -> Any:
        return FakeInspector(answer) if service == "inspector2" else calls(service)

    check = by_name(Doctor(clients, env.target()).run())["Inspector ECR scanning"]
    assert check.status == status
    assert text in check.detail
    if status == Status.FAIL:
        assert check.fix is not None
        assert "aws inspector2 enable --resource-types ECR" in check.fix
        assert "delegated administrator" in check.fix


class FakeTopic:
    def get_paginator(self, name: str) -> Any:
        assert name == "list_subscriptions_by_topic"
        return self

    def paginate(self, TopicArn: str) -> Any:
        return [
            {"Subscriptions": [{"SubscriptionArn": "PendingConfirmation", "Protocol": "email", "Endpoint": "a@b.c"}]}
        ]


def test_pending_subscriptions_are_a_warning(env: Env) -> None:
    env.ready()
    calls = env.clients
    checks = Doctor(lambda s: FakeTopic() if s == "sns" else calls(s), env.target()).run()
    check = by_name(checks)["SNS subscriptions"]
    assert check.status == Status.WARN
    assert "1 of 1 pending confirmation (email:a@b.c)" in check.detail
    assert failed(checks) == []


def test_every_call_is_allowed_by_the_shipped_read_only_policy(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ecr_warden.adapters.slack.SlackWebhooks.post", lambda *a: None)
    env.ready().checks(send_test_message=True)
    create_stack(env)
    doctor.locate(argparse.Namespace(stack=None, environment="qa"), REGION, env.clients)
    Doctor(env.clients, Target("dev", REGION, "stack", env.outputs, [RuleRef("default", "x")], ["a"])).run()
    policy = json.loads((ROOT / "docs" / "doctor-policy.json").read_text(encoding="utf-8"))
    allowed = {action for statement in policy["Statement"] for action in statement["Action"]}
    called = env.clients.actions - {"sts:GetCallerIdentity"}  # needs no permission
    assert called <= allowed, f"docs/doctor-policy.json lacks {called - allowed}"
    verbs = ("Describe", "Get", "List", "Query", "BatchGet")
    assert all(action.split(":")[1].startswith(verbs) for action in allowed), "read-only actions only"


def create_stack(env: Env) -> None:
    cloudformation = env.client("cloudformation")
    template = {
        "Parameters": {"EnvironmentName": {"Type": "String"}},
        "Resources": {
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Name": "ecr-warden-qa-push",
                    "EventPattern": {"source": ["aws.ecr"]},
                    "State": "ENABLED",
                },
            },
            "Topic": {"Type": "AWS::SNS::Topic"},
        },
        "Outputs": {"AuditTableName": {"Value": "ecr-warden-qa-audit-v2"}},
    }
    cloudformation.create_stack(
        StackName="ecr-warden-qa",
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "EnvironmentName", "ParameterValue": "qa"}],
    )


def test_the_deployment_is_found_from_its_cloudformation_stack(env: Env) -> None:
    create_stack(env)
    args = argparse.Namespace(stack=None, environment="qa")
    target = doctor.locate(args, REGION, env.clients)
    assert target.environment == "qa"
    assert target.outputs == {"AuditTableName": "ecr-warden-qa-audit-v2"}
    assert target.rules == [RuleRef("default", "ecr-warden-qa-push")]
    assert target.source.startswith("CloudFormation stack ecr-warden-qa")
    assert target.stack_status == "CREATE_COMPLETE"
    assert by_name(Doctor(env.clients, target).run())["stack"].status == Status.OK


@pytest.mark.parametrize(
    ("stack_status", "status", "text"),
    [
        ("UPDATE_COMPLETE", Status.OK, "UPDATE_COMPLETE"),
        ("UPDATE_ROLLBACK_COMPLETE", Status.WARN, "the last deployment failed and was rolled back"),
        ("UPDATE_IN_PROGRESS", Status.WARN, "a deployment is running"),
        ("ROLLBACK_COMPLETE", Status.FAIL, "the stack is not usable"),
    ],
)
def test_the_stack_status(env: Env, stack_status: str, status: Status, text: str) -> None:
    target = env.target()
    target.stack_status, target.stack_name = stack_status, "ecr-warden-dev"
    target.parameters = {"OrganizationId": "o-abc123"}
    checks = by_name(Doctor(env.clients, target).run())
    assert checks["stack"].status == status
    assert text in checks["stack"].detail
    if status != Status.OK:
        assert checks["stack"].fix is not None
        assert "--stack-name ecr-warden-dev" in checks["stack"].fix or "again" in checks["stack"].fix
    assert "member accounts of o-abc123" in checks["organization"].detail


def test_no_stack_is_a_failure_that_says_where_it_looked(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(
        stack=None, environment="nowhere", region=REGION, endpoint_url=None, send_test_message=False, strict=False
    )
    assert doctor.run(args) == 1
    out = capsys.readouterr().out
    assert "✗ deployment [required]: no CloudFormation stack ecr-warden-nowhere in us-east-1" in out
    assert "sam deploy --guided" in out


def test_run_prints_every_check_and_exits_by_the_required_ones(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.ready()
    monkeypatch.setattr(doctor, "locate", lambda args, region, clients: env.target())
    args = argparse.Namespace(
        stack=None, environment="dev", region=REGION, endpoint_url=None, send_test_message=False, strict=False
    )
    assert doctor.run(args) == 0
    out = capsys.readouterr().out
    assert f"✓ EventBridge rules [required]: {RULES} of {RULES} enabled" in out
    assert "! Inspector ECR scanning [required]: unknown" in out
    assert re.search(r"\d+ passed, 0 failed \(required\), 1 warning\(s\): exit 0", out), out
    args.strict = True
    assert doctor.run(args) == 1, "--strict: warnings fail too"
    env.set_webhook('{"url": ""}')
    args.strict = False
    assert doctor.run(args) == 1
    assert "✗ Slack webhook [required]" in capsys.readouterr().out


def test_the_environment_maps_to_the_stack_samconfig_names(tmp_path: Path) -> None:
    assert doctor._samconfig_environment("prod", ROOT / "samconfig.toml")["stack_name"] == "ecr-warden-prod"
    assert doctor._samconfig_environment("dev", ROOT / "samconfig.toml")["stack_name"] == "ecr-warden-dev"
    assert doctor._samconfig_environment("dev", tmp_path / "missing.toml") == {}


def test_organization_mode_checks_that_this_account_can_list_the_organizations_accounts(env: Env) -> None:
    from botocore.exceptions import ClientError

    target = env.ready().target()
    target.parameters = {"OrganizationId": "o-abc123"}
    env.client("organizations").create_organization(FeatureSet="ALL")
    check = by_name(Doctor(env.clients, target).run())["organization accounts"]
    assert check.status == Status.OK
    assert "accounts listed: runs can cover them" in check.detail

    class NotDelegated:
        def list_accounts(self, **_: Any) -> Any:
            error = {"Error": {"Code": "AccessDeniedException", "Message": "not a delegated administrator"}}
            raise ClientError(error, "ListAccounts")  # type: ignore[arg-type]

    calls = env.clients
    check = by_name(Doctor(lambda s: NotDelegated() if s == "organizations" else calls(s), target).run())[
        "organization accounts"
    ]
    assert check.status == Status.WARN
    assert "daily organization sweep and reconcile runs will be refused" in check.detail
    assert check.fix is not None
    assert "enable-delegated-admin-account" in check.fix
    assert "organization accounts" not in by_name(Doctor(env.clients, env.target()).run())  # single account
