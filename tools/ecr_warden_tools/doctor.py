"""`ecr-warden doctor`: is a deployment of ecr-warden ready to guard the registry, and what fixes it if not.

It finds the deployment from its CloudFormation stack (outputs and resources), or, where the endpoint is the
embedded local stack (`ecr-warden local`), from the local stack's outputs. Every check prints one line with ✓, ✗
(a required check failed), ! (a warning) or · (information), and under a ✗ or ! the command or console step that
fixes it. The exit code is 0 when every required check passes (1 otherwise; `--strict` counts warnings too).

Read-only: the calls it makes are exactly the actions of docs/doctor-policy.json (a test holds them equal). Where
an endpoint does not implement an API (moto has no Inspector account status), the check is a warning saying so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
LOCAL_STATE_PATH = "/_ecr_warden/state"  # the local stack answers this with its outputs
# Statuses the gate records for a decision (PENDING is "not decided yet"); the by-status index is keyed by them
DECISION_STATUSES = (
    "QUARANTINED",
    "ARCHIVED",
    "TAGGED",
    "PASSED",
    "AUDITED",
    "RELEASED",
    "EXEMPT",
    "SCAN_FAILED",
    "UNSCANNED",
    "SKIPPED",
)
ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"})
UNANSWERED = frozenset({"UnknownOperationException", "InvalidAction", "NotImplemented", "UnrecognizedClientException"})
POLICY_FILE = "docs/doctor-policy.json"


class Status(StrEnum):
    OK = "ok"
    FAIL = "fail"
    WARN = "warn"
    INFO = "info"


SYMBOLS = {Status.OK: "✓", Status.FAIL: "✗", Status.WARN: "!", Status.INFO: "·"}


@dataclass(frozen=True)
class Check:
    """One line of the report. A required check that fails is FAIL; an advisory one (or one that could not be
    answered) is WARN."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    required: bool = True

    def lines(self) -> list[str]:
        kind = "required" if self.required else "advisory"
        lines = [f"{SYMBOLS[self.status]} {self.name} [{kind}]: {self.detail}"]
        if self.fix and self.status in (Status.FAIL, Status.WARN):
            lines += [
                f"    fix: {line}" if n == 0 else f"         {line}" for n, line in enumerate(self.fix.splitlines())
            ]
        return lines


@dataclass(frozen=True)
class RuleRef:
    bus: str
    name: str


@dataclass
class Target:
    """Where the deployment is and what it consists of."""

    environment: str
    region: str
    source: str  # "CloudFormation stack NAME" or "local stack at URL"
    outputs: dict[str, str]
    rules: list[RuleRef] = field(default_factory=list)
    alarms: list[str] | None = None  # None: look them up by the name prefix ecr-warden-<env>-
    dead_letter_queues: list[str] | None = None  # URLs; None: look them up by name (ecr-warden-<env>-*-dlq)
    local: bool = False
    stack_status: str | None = None  # CloudFormation's; None for the local stack
    stack_name: str = ""
    parameters: dict[str, str] = field(default_factory=dict)


class NotFoundError(Exception):
    """No deployment where the doctor looked; the message says where, and what to do."""


class _Unanswered(Exception):
    def __init__(self, api: str, why: str) -> None:
        super().__init__(f"{api}: {why}")
        self.api, self.why = api, why


# ---------------------------------------------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--environment",
        default="dev",
        help="EnvironmentName of the deployment; its stack is the one samconfig.toml "
        "names for it (default: ecr-warden-ENVIRONMENT)",
    )
    parser.add_argument("--stack", default=None, help="the CloudFormation stack name (overrides --environment)")
    parser.add_argument(
        "--region",
        default=None,
        help="default: the standard AWS chain (AWS_REGION, AWS_DEFAULT_REGION, profile), then samconfig.toml",
    )
    parser.add_argument(
        "--endpoint-url",
        default=None,
        help="default: the standard AWS chain (AWS_ENDPOINT_URL, profile); e.g. the local stack's http://127.0.0.1:4566",
    )
    parser.add_argument(
        "--send-test-message", action="store_true", help="also post a test message to the Slack webhook"
    )
    parser.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")


def run(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    """The `doctor` subcommand: print the checks, return the exit code (0 only when every required check passes)."""
    try:
        region = _region(args)
    except NotFoundError as exc:
        print(f"ecr-warden: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    clients = client_factory(region, args.endpoint_url)
    try:
        target = locate(args, region, clients)
    except NotFoundError as exc:
        out(f"{SYMBOLS[Status.FAIL]} deployment [required]: {exc}")
        return EXIT_FAILED
    out(f"ecr-warden doctor: environment {target.environment}, {target.source}, region {region}")
    checks = Doctor(clients, target, send_test_message=args.send_test_message).run()
    for check in checks:
        for line in check.lines():
            out(line)
    failed = [c for c in checks if c.status == Status.FAIL]
    warned = [c for c in checks if c.status == Status.WARN]
    passed = sum(c.status == Status.OK for c in checks)
    code = EXIT_FAILED if failed or (args.strict and warned) else EXIT_OK
    out(f"{passed} passed, {len(failed)} failed (required), {len(warned)} warning(s): exit {code}")
    return code


def _region(args: argparse.Namespace) -> str:
    """--region, else boto3's standard chain, else the region samconfig.toml deploys the environment to."""
    if args.region:
        return str(args.region)
    import boto3

    region: str | None = os.environ.get("AWS_REGION") or boto3.session.Session().region_name
    region = region or _samconfig_environment(args.environment).get("region")
    if not region:
        raise NotFoundError("no region: pass --region, or set AWS_REGION (or a region in your AWS profile)")
    return str(region)


def _samconfig_environment(environment: str, path: Path | None = None) -> dict[str, str]:
    """The stack name and region samconfig.toml gives the config env whose EnvironmentName is `environment`."""
    path = path or Path.cwd() / "samconfig.toml"
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    for section in config.values():
        if not isinstance(section, dict):
            continue
        overrides = str(section.get("deploy", {}).get("parameters", {}).get("parameter_overrides", ""))
        if f"EnvironmentName={environment}" in overrides.split():
            found = {**section.get("global", {}).get("parameters", {}), **section["deploy"]["parameters"]}
            return {key: str(found[key]) for key in ("stack_name", "region") if key in found}
    return {}


def client_factory(region: str, endpoint_url: str | None) -> Callable[[str], Any]:
    """Clients of one region; the endpoint from --endpoint-url, else boto3's chain (AWS_ENDPOINT_URL, profile)."""
    import boto3
    from botocore.config import Config

    from ecr_warden.adapters.aws import user_agent_extra

    session = boto3.Session(region_name=region)
    if session.get_credentials() is None and (endpoint_url or os.environ.get("AWS_ENDPOINT_URL")):
        session = boto3.Session(  # the local stack takes any credentials
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
        )
    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=20,
        user_agent_extra=user_agent_extra(),
    )
    made: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in made:
            made[service] = session.client(service, endpoint_url=endpoint_url, config=config)  # type: ignore[call-overload]
        return made[service]

    return client


# ---------------------------------------------------------------------------------------------------------- locate


def locate(args: argparse.Namespace, region: str, clients: Callable[[str], Any]) -> Target:
    """The deployment: its CloudFormation stack, else the local stack the endpoint points at."""
    from botocore.exceptions import BotoCoreError, ClientError

    sam = _samconfig_environment(args.environment)
    stack = args.stack or sam.get("stack_name") or f"ecr-warden-{args.environment}"
    cloudformation = clients("cloudformation")
    try:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        if _code(exc) != "ValidationError":  # "Stack with id X does not exist"
            raise NotFoundError(f"cannot read stack {stack}: {_code(exc)}: {_message(exc)}") from None
        described = None
    except (BotoCoreError, NotImplementedError) as exc:
        raise NotFoundError(f"cannot reach CloudFormation at {cloudformation.meta.endpoint_url}: {exc}") from None
    if described is None:
        local = _local_stack(cloudformation.meta.endpoint_url, region)
        if local is not None:
            return local
        hint = f" (samconfig.toml deploys it to {sam['region']})" if sam.get("region", region) != region else ""
        raise NotFoundError(
            f"no CloudFormation stack {stack} in {region}{hint}.\n    fix: deploy it (`sam build && sam deploy "
            "--guided`, docs/DEPLOY.md), or pass --stack NAME / --environment ENV / --region REGION"
        )
    return _from_stack(cloudformation, described, args.environment, region)


def _from_stack(cloudformation: Any, described: dict[str, Any], environment: str, region: str) -> Target:
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters") or []}
    target = Target(
        environment=parameters.get("EnvironmentName") or environment,
        region=region,
        source=f"CloudFormation stack {described['StackName']} ({described.get('StackStatus', '?')})",
        outputs={o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs") or []},
        alarms=[],
        dead_letter_queues=[],
        stack_status=str(described.get("StackStatus", "?")),
        stack_name=str(described["StackName"]),
        parameters=parameters,
    )
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=described["StackName"]):
        for resource in page.get("StackResourceSummaries", []):
            physical = resource.get("PhysicalResourceId") or ""
            if resource["ResourceType"] == "AWS::Events::Rule" and physical:
                # Ref of a rule on a custom bus is "bus|rule"; on the default bus just the rule's name
                bus, _, name = physical.rpartition("|")
                target.rules.append(RuleRef(bus.rsplit("/", 1)[-1] or "default", name))
            elif resource["ResourceType"] == "AWS::CloudWatch::Alarm" and physical:
                assert target.alarms is not None
                target.alarms.append(physical)
            elif resource["ResourceType"] == "AWS::SQS::Queue" and "DeadLetter" in resource["LogicalResourceId"]:
                assert target.dead_letter_queues is not None
                target.dead_letter_queues.append(physical)
    return target


def _local_stack(endpoint_url: str | None, region: str) -> Target | None:
    """The local stack at the endpoint, if that is what answers there (`ecr-warden local`)."""
    if not endpoint_url or not endpoint_url.startswith("http://"):
        return None
    try:
        with urllib.request.urlopen(endpoint_url.rstrip("/") + LOCAL_STATE_PATH, timeout=10) as response:  # noqa: S310
            state = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    outputs = state.get("outputs") if isinstance(state, dict) else None
    if not isinstance(outputs, dict) or "DecisionBusName" not in outputs:
        return None
    environment = str(outputs["DecisionBusName"]).removeprefix("ecr-warden-")
    return Target(
        environment=environment,
        region=str(state.get("region") or region),
        source=f"local stack at {endpoint_url}",
        outputs={str(k): str(v) for k, v in outputs.items()},
        local=True,
    )


# ---------------------------------------------------------------------------------------------------------- checks


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", type(exc).__name__))


def _message(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Message", "")).strip() or str(exc)


def _unanswered(exc: Exception, api: str) -> _Unanswered | None:
    """Why the endpoint could not answer `api` (not implemented, denied, unreachable), or None: a real answer."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, NotImplementedError):
        return _Unanswered(api, f"the endpoint does not answer {api}")
    if isinstance(exc, BotoCoreError):
        return _Unanswered(api, f"the endpoint does not answer {api} ({type(exc).__name__})")
    if isinstance(exc, ClientError):
        code = _code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in ACCESS_DENIED:
            return _Unanswered(api, f"access denied to {api}: attach {POLICY_FILE} to the caller")
        if code in UNANSWERED or status in (404, 501) or status >= 500:
            return _Unanswered(api, f"the endpoint does not answer {api} ({code})")
    return None


class Doctor:
    def __init__(self, clients: Callable[[str], Any], target: Target, send_test_message: bool = False) -> None:
        self.clients, self.target, self.send_test_message = clients, target, send_test_message
        self.outputs = target.outputs
        self.env = target.environment
        self.policy: Any = None
        self.scan_type: str | None = None
        self._account: str | None = None

    @property
    def account(self) -> str:
        if self._account is None:
            self._account = str(self.clients("sts").get_caller_identity()["Account"])
        return self._account

    def run(self) -> list[Check]:
        checks: list[Check] = []
        steps: list[tuple[str, str, bool, Callable[[], Iterator[Check]]]] = [
            ("stack", "DescribeStacks", True, self.stack),
            ("functions", "GetFunctionConfiguration", True, self.functions),
            ("policy", "GetParameter", True, self.policy_parameter),
            ("registry scanning", "GetRegistryScanningConfiguration", True, self.registry_scanning),
            ("Inspector ECR scanning", "BatchGetAccountStatus", True, self.inspector),
            ("Slack webhook", "GetSecretValue", True, self.slack),
            ("EventBridge rules", "DescribeRule", True, self.rules),
            ("organization accounts", "ListAccounts", False, self.organization_accounts),
            ("SNS subscriptions", "ListSubscriptionsByTopic", False, self.subscriptions),
            ("CloudWatch alarms", "DescribeAlarms", False, self.alarms),
            ("dead-letter queues", "GetQueueAttributes", False, self.dead_letter_queues),
            ("last decision", "Query", False, self.last_decision),
        ]
        for name, api, required, step in steps:
            try:
                checks.extend(step())
            except Exception as exc:
                why = _unanswered(exc, getattr(exc, "operation_name", None) or api)
                detail = f"unknown ({why.why})" if why else f"unknown ({api} failed: {_code(exc)}: {_message(exc)})"
                checks.append(Check(name, Status.WARN, detail[:400], required=required))
        return checks

    # -- the stack -----------------------------------------------------------------------------------------------

    def stack(self) -> Iterator[Check]:
        status, name = self.target.stack_status, self.target.stack_name
        if status is None:
            return
        if status in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"):
            yield Check("stack", Status.OK, status)
        elif status.endswith("_IN_PROGRESS"):
            yield Check("stack", Status.WARN, f"{status}: a deployment is running", "run the doctor again when it ends")
        elif status in ("UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"):
            yield Check(
                "stack",
                Status.WARN,
                f"{status}: the last deployment failed and was rolled back; the version before it runs",
                f"read why: aws cloudformation describe-stack-events --stack-name {name} (the first *_FAILED event), "
                "fix it, deploy again",
            )
        else:
            yield Check(
                "stack",
                Status.FAIL,
                f"{status}: the stack is not usable",
                f"read why: aws cloudformation describe-stack-events --stack-name {name}; a stack in ROLLBACK_COMPLETE "
                "must be deleted (sam delete) and deployed again (docs/DEPLOY.md, 'Remove, and deploy again')",
            )
        if self.target.parameters.get("OrganizationId"):
            yield Check(
                "organization",
                Status.INFO,
                f"guards the member accounts of {self.target.parameters['OrganizationId']}: the scanning and "
                "Inspector checks here are this account's; each member account needs its own (docs/ORGANIZATION.md)",
                required=False,
            )

    def organization_accounts(self) -> Iterator[Check]:
        """Organization mode: runs with `--accounts organization` (and the daily ones) list the accounts; only the
        management account or a delegated administrator may."""
        if not self.target.parameters.get("OrganizationId"):
            return
        from botocore.exceptions import ClientError

        try:
            page = self.clients("organizations").list_accounts(MaxResults=20)
        except ClientError as exc:
            if _code(exc) not in ("AccessDeniedException", "AWSOrganizationsNotInUseException"):
                raise
            yield Check(
                "organization accounts",
                Status.WARN,
                f"this account can't list the organization's accounts ({_code(exc)}): the daily organization sweep "
                "and reconcile runs will be refused",
                "from the management account, make this account a delegated administrator (e.g. Inspector's: aws "
                "inspector2 enable-delegated-admin-account --delegated-admin-account-id <this account>), or start "
                "runs with --accounts <ids>",
                required=False,
            )
            return
        shown = len(page.get("Accounts", []))
        more = "+" if page.get("NextToken") else ""
        yield Check("organization accounts", Status.OK, f"{shown}{more} accounts listed: runs can cover them",
                    required=False)  # fmt: skip

    # -- functions and mode --------------------------------------------------------------------------------------

    def functions(self) -> Iterator[Check]:
        from botocore.exceptions import ClientError

        names = {key: value for key, value in sorted(self.outputs.items()) if key.endswith("FunctionName")}
        problems, mode = [], None
        client = self.clients("lambda")
        for key, name in names.items():
            try:
                config = client.get_function_configuration(FunctionName=name)
            except ClientError as exc:
                if _code(exc) != "ResourceNotFoundException":
                    raise
                problems.append(f"{name} is missing")
                continue
            if config.get("State", "Active") != "Active" or config.get("LastUpdateStatus") == "Failed":
                problems.append(f"{name} is {config.get('State')} ({config.get('StateReason', '')})")
            if key == "ScanGateFunctionName":
                mode = (config.get("Environment") or {}).get("Variables", {}).get("WARDEN_MODE")
        if problems or not names:
            yield Check(
                "functions",
                Status.FAIL,
                "; ".join(problems) or "the stack has no function outputs",
                "redeploy the stack: sam build && sam deploy (same --config-env); then run ecr-warden doctor again",
            )
        else:
            yield Check("functions", Status.OK, f"{len(names)} deployed and active: {', '.join(names.values())}")
        yield self._mode(mode)

    def _mode(self, mode: str | None) -> Check:
        if mode == "audit":
            return Check(
                "mode",
                Status.INFO,
                "audit: decisions are recorded and announced (would_quarantine ...), nothing in ECR changes",
                required=False,
            )
        if mode == "enforce":
            return Check("mode", Status.INFO, "enforce: offending images are quarantined or tagged", required=False)
        return Check(
            "mode",
            Status.WARN,
            f"unknown (the scan gate's WARDEN_MODE is {mode!r})",
            "redeploy with Mode=audit or Mode=enforce (samconfig.toml parameter_overrides)",
            required=False,
        )

    # -- policy --------------------------------------------------------------------------------------------------

    def policy_parameter(self) -> Iterator[Check]:
        from botocore.exceptions import ClientError

        from ecr_warden.errors import PermanentError
        from ecr_warden.policy.load import parse_policy

        name = self.outputs.get("PolicyParameterName", f"/ecr-warden/{self.env}/policy")
        try:
            text = self.clients("ssm").get_parameter(Name=name)["Parameter"]["Value"]
        except ClientError as exc:
            if _code(exc) != "ParameterNotFound":
                raise
            yield Check("policy", Status.FAIL, f"parameter {name} does not exist", "redeploy the stack: sam deploy")
            return
        try:
            self.policy = parse_policy(text, source=name)
        except PermanentError as exc:
            yield Check(
                "policy",
                Status.FAIL,
                str(exc).splitlines()[0][:300],
                f"correct it (docs/policy.md): aws ssm get-parameter --name {name} --query Parameter.Value "
                f"--output text > policy.json; edit; aws ssm put-parameter --name {name} --overwrite --value "
                "file://policy.json",
            )
            return
        rules = ", ".join(f"{r.name} ({' '.join(r.repositories)})" for r in self.policy.rules)
        yield Check("policy", Status.OK, f"{name} is valid: rules {rules}; {len(self.policy.exemptions)} exemption(s)")

    def _managed_patterns(self) -> list[str]:
        if self.policy is None:
            return ["*"]
        return sorted({pattern for rule in self.policy.rules for pattern in rule.repositories})

    # -- scanning ------------------------------------------------------------------------------------------------

    def registry_scanning(self) -> Iterator[Check]:
        from ecr_warden.repository_settings.state import RegistryScanning, ScanRule

        config = self.clients("ecr").get_registry_scanning_configuration().get("scanningConfiguration") or {}
        scanning = RegistryScanning(
            str(config.get("scanType") or "BASIC"),
            tuple(
                ScanRule(r["scanFrequency"], tuple(f["filter"] for f in r.get("repositoryFilters") or []))
                for r in config.get("rules") or []
            ),
        )
        self.scan_type = scanning.scan_type
        patterns = self._managed_patterns()
        # A pattern of the policy is covered when a scanning filter matches it as a name ("*" matches "ses-base/*")
        uncovered = [p for p in patterns if scanning.frequency_for(p) is None]
        uncovered += [r for r in self._managed_repositories(patterns) if scanning.frequency_for(r) is None]
        frequencies = sorted({scanning.frequency_for(p) or "" for p in patterns} - {""})
        if not uncovered:
            yield Check(
                "registry scanning",
                Status.OK,
                f"{scanning.scan_type} {'/'.join(frequencies)} covers the managed repositories ({' '.join(patterns)})",
            )
            if scanning.scan_type != "ENHANCED" or "CONTINUOUS_SCAN" not in frequencies:
                yield Check(
                    "continuous scanning",
                    Status.INFO,
                    "new CVEs in images already pushed are found only by ENHANCED + CONTINUOUS_SCAN (the ECR "
                    "operations guide's setting)",
                    required=False,
                )
            return
        shown = ", ".join(uncovered[:5]) + (f" and {len(uncovered) - 5} more" if len(uncovered) > 5 else "")
        yield Check(
            "registry scanning",
            Status.FAIL,
            f"{scanning.scan_type} scanning with rules {_rules_text(scanning)} does not cover {shown}: their images "
            "are never scanned automatically, so the gate never decides on them",
            _scanning_fix(scanning, patterns),
        )

    def _managed_repositories(self, patterns: list[str], limit: int = 10_000) -> list[str]:
        """The repositories that exist and the policy manages (at most `limit` looked at: 10 pages)."""
        import fnmatch

        found: list[str] = []
        for page in (
            self.clients("ecr")
            .get_paginator("describe_repositories")
            .paginate(PaginationConfig={"PageSize": 1000, "MaxItems": limit})
        ):
            for repository in page.get("repositories", []):
                name = repository["repositoryName"]
                if any(fnmatch.fnmatchcase(name, p) for p in patterns):
                    found.append(name)
        return found

    def inspector(self) -> Iterator[Check]:
        needed = self.scan_type == "ENHANCED"
        api = "BatchGetAccountStatus"
        response = self.clients("inspector2").batch_get_account_status(accountIds=[self.account])
        accounts = [a for a in response.get("accounts", []) if a.get("accountId") == self.account]
        status = ((accounts[0].get("resourceState") or {}).get("ecr") or {}).get("status") if accounts else None
        if status is None:
            yield Check(
                "Inspector ECR scanning",
                Status.WARN,
                f"unknown (the endpoint does not answer {api} for account {self.account})",
                required=needed,
            )
            return
        if status == "ENABLED":
            yield Check("Inspector ECR scanning", Status.OK, f"ENABLED in account {self.account}", required=needed)
            return
        fix = (
            f"aws inspector2 enable --resource-types ECR --account-ids {self.account}\n"
            "(in an AWS Organization: from the Inspector delegated administrator account; console: Amazon Inspector "
            "> Account management > select the account > Activate > Amazon ECR)"
        )
        if not needed:
            yield Check(
                "Inspector ECR scanning",
                Status.INFO,
                f"{status} (not needed: the registry uses {self.scan_type} scanning)",
                required=False,
            )
            return
        yield Check(
            "Inspector ECR scanning",
            Status.WARN if status == "ENABLING" else Status.FAIL,
            f"{status} in account {self.account}: ENHANCED scanning produces no results until Inspector scans ECR",
            fix,
        )

    # -- Slack ---------------------------------------------------------------------------------------------------

    def slack(self) -> Iterator[Check]:
        secrets = {"default": self.outputs.get("SlackWebhookSecretArn") or f"ecr-warden/{self.env}/slack-webhook"}
        for route in getattr(getattr(self.policy, "notifications", None), "routes", []) or []:
            if route.webhook_secret:
                secrets[route.name] = route.webhook_secret
        for route, secret in secrets.items():
            yield self._slack_route(route, secret)

    def _slack_route(self, route: str, secret: str) -> Check:
        from botocore.exceptions import ClientError

        from ecr_warden.adapters.slack import checked_url
        from ecr_warden.errors import SlackConfigurationError

        name = f"Slack webhook ({route})" if route != "default" else "Slack webhook"
        fix = (
            f'put the URL in a file as {{"url": "https://hooks.slack.com/services/..."}} (never on the command line), '
            f"then: aws secretsmanager put-secret-value --secret-id {secret} --secret-string file://webhook.json"
        )
        try:
            value = self.clients("secretsmanager").get_secret_value(SecretId=secret).get("SecretString") or ""
        except ClientError as exc:
            if _code(exc) not in ("ResourceNotFoundException", "InvalidRequestException"):
                raise
            return Check(name, Status.FAIL, f"secret {secret} does not exist ({_code(exc)})", fix)
        url = _secret_url(value)
        try:
            checked_url(route, url or "")
        except SlackConfigurationError:
            what = 'has a malformed "url"' if url else 'has no "url"' if '"url"' not in value else "is empty"
            what = what if value.strip() else "is empty"
            return Check(name, Status.FAIL, f"secret {secret} {what}: no Slack message can be sent", fix)
        if not self.send_test_message:
            return Check(name, Status.OK, f"secret {secret} holds a webhook URL (not sent: --send-test-message)")
        return self._send_test(name, route, str(url), fix)

    def _send_test(self, name: str, route: str, url: str, fix: str) -> Check:
        from ecr_warden.adapters.slack import SlackWebhooks
        from ecr_warden.errors import WardenError

        text = f"ecr-warden doctor: a test message from environment {self.env} ({self.target.region})"
        message = {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
        try:
            SlackWebhooks(None).post(route, url, message)
        except WardenError as exc:
            return Check(name, Status.FAIL, f"the test message failed: {exc}", fix)
        return Check(name, Status.OK, "the test message was accepted by the webhook")

    # -- EventBridge, SNS, alarms, queues ------------------------------------------------------------------------

    def _rule_refs(self) -> list[RuleRef]:
        if not self.target.local:
            return self.target.rules
        events = self.clients("events")
        prefix = f"ecr-warden-{self.env}-"
        refs = []
        for bus in ("default", self.outputs.get("DecisionBusName", f"ecr-warden-{self.env}")):
            for page in events.get_paginator("list_rules").paginate(EventBusName=bus, NamePrefix=prefix):
                refs += [RuleRef(bus, rule["Name"]) for rule in page.get("Rules", [])]
        return refs

    def rules(self) -> Iterator[Check]:
        from botocore.exceptions import ClientError

        events = self.clients("events")
        refs = self._rule_refs()
        broken: list[tuple[RuleRef, str]] = []
        for ref in refs:
            try:
                state = events.describe_rule(Name=ref.name, EventBusName=ref.bus).get("State", "?")
            except ClientError as exc:
                if _code(exc) != "ResourceNotFoundException":
                    raise
                state = "missing"
            if state != "ENABLED":
                broken.append((ref, state))
        if not refs:
            yield Check("EventBridge rules", Status.FAIL, "the stack has no EventBridge rules", "redeploy: sam deploy")
        elif broken:
            yield Check(
                "EventBridge rules",
                Status.FAIL,
                f"{len(broken)} of {len(refs)} not enabled: "
                + ", ".join(f"{ref.name} on bus {ref.bus} is {state}" for ref, state in broken)
                + ": their events never reach the functions",
                "\n".join(_enable_rule(ref, state) for ref, state in broken),
            )
        else:
            yield Check("EventBridge rules", Status.OK, f"{len(refs)} of {len(refs)} enabled")

    def subscriptions(self) -> Iterator[Check]:
        topic = self.outputs.get("DecisionsTopicArn")
        if not topic:
            yield Check("SNS subscriptions", Status.WARN, "the stack has no DecisionsTopicArn output", required=False)
            return
        found = [
            s
            for page in self.clients("sns").get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
            for s in page.get("Subscriptions", [])
        ]
        pending = [s for s in found if s.get("SubscriptionArn") == "PendingConfirmation"]
        if pending:
            endpoints = ", ".join(f"{s.get('Protocol')}:{s.get('Endpoint')}" for s in pending)
            yield Check(
                "SNS subscriptions",
                Status.WARN,
                f"{len(pending)} of {len(found)} pending confirmation ({endpoints}): they receive nothing",
                "open the confirmation e-mail from AWS Notifications and click 'Confirm subscription' (look in spam; "
                f"it expires after 3 days: then `aws sns subscribe --topic-arn {topic} --protocol email "
                "--notification-endpoint ADDRESS` sends a new one)",
                required=False,
            )
        elif not found:
            yield Check(
                "SNS subscriptions",
                Status.INFO,
                "nobody subscribes to the decisions topic (optional: AlertEmail, a SIEM or chat bot)",
                required=False,
            )
        else:
            yield Check("SNS subscriptions", Status.OK, f"{len(found)} confirmed", required=False)

    def alarms(self) -> Iterator[Check]:
        cloudwatch = self.clients("cloudwatch")
        names = self.target.alarms
        if names is None:
            response = cloudwatch.describe_alarms(AlarmNamePrefix=f"ecr-warden-{self.env}-", MaxRecords=100)
        elif names:
            response = cloudwatch.describe_alarms(AlarmNames=names[:100])
        else:
            response = {}
        alarms = response.get("MetricAlarms", [])
        if not alarms:
            note = "the local stack creates no alarms" if self.target.local else "the stack has no alarms"
            yield Check("CloudWatch alarms", Status.INFO, note, required=False)
            return
        firing = [a for a in alarms if a.get("StateValue") == "ALARM"]
        if firing:
            yield Check(
                "CloudWatch alarms",
                Status.WARN,
                f"{len(firing)} of {len(alarms)} in ALARM: " + ", ".join(a["AlarmName"] for a in firing),
                "each names a dead-letter queue with parked messages: see the dead-letter queues below",
                required=False,
            )
        else:
            yield Check("CloudWatch alarms", Status.OK, f"none of {len(alarms)} in ALARM", required=False)

    def _dead_letter_queue_urls(self) -> list[str]:
        urls = {url for key, url in self.outputs.items() if key.endswith("DeadLetterQueueUrl")}
        if self.target.dead_letter_queues is not None:
            urls.update(u for u in self.target.dead_letter_queues if u)
        else:
            found = self.clients("sqs").list_queues(QueueNamePrefix=f"ecr-warden-{self.env}-").get("QueueUrls", [])
            urls.update(u for u in found if u.endswith("-dlq"))
        return sorted(urls, key=lambda u: u.rsplit("/", 1)[-1])

    def dead_letter_queues(self) -> Iterator[Check]:
        sqs = self.clients("sqs")
        for url in self._dead_letter_queue_urls():
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            depth = int(attributes.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))
            name = url.rstrip("/").rsplit("/", 1)[-1]
            if not depth:
                yield Check(f"dead-letter queue {name}", Status.OK, "empty", required=False)
                continue
            yield Check(
                f"dead-letter queue {name}",
                Status.WARN,
                f"{depth} message(s) parked",
                _dead_letter_fix(name, url, self.env),
                required=False,
            )

    def last_decision(self) -> Iterator[Check]:
        from botocore.exceptions import ClientError

        table = self.outputs.get("AuditTableName", f"ecr-warden-{self.env}-audit-v2")
        dynamodb = self.clients("dynamodb")
        try:
            latest = _latest_decision(dynamodb, table)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            yield Check(
                "audit table",
                Status.FAIL,
                f"{table} does not exist: the gate cannot record decisions",
                "if the stack was deleted and deployed again, adopt the retained table (docs/DEPLOY.md, 'Remove and "
                "deploy again'); otherwise redeploy: sam deploy",
            )
            return
        if latest is None:
            yield Check(
                "last decision",
                Status.INFO,
                f"none recorded in {table} yet: push an image to a managed repository to see the first",
                required=False,
            )
            return
        when = latest["updated_at"]["S"]
        repository = latest.get("repository", {}).get("S", "?")
        digest = latest.get("digest", {}).get("S", "?")
        yield Check(
            "last decision",
            Status.INFO,
            f"{latest['status']['S']} {repository}@{digest[:19]} at {when} ({_ago(when)})",
            required=False,
        )


# ---------------------------------------------------------------------------------------------------------- fixes


def _secret_url(value: str) -> str | None:
    """The "url" of a webhook secret's JSON, as the notifier reads it; None if there is none."""
    try:
        document = json.loads(value)
    except ValueError:
        return None
    url = document.get("url") if isinstance(document, dict) else None
    return url if isinstance(url, str) and url.strip() else None


def _rules_text(scanning: Any) -> str:
    if not scanning.rules:
        return "(none)"
    return "; ".join(f"{r.frequency} {' '.join(r.filters) or '(no filter)'}" for r in scanning.rules)


def _scanning_fix(scanning: Any, patterns: list[str]) -> str:
    """The command that adds the missing patterns to the registry's rules, keeping every rule it has (the API
    replaces the whole configuration)."""
    scan_type = scanning.scan_type if scanning.rules else "ENHANCED"
    frequency = "CONTINUOUS_SCAN" if scan_type == "ENHANCED" else "SCAN_ON_PUSH"
    rules = [{"scanFrequency": r.frequency, "filters": list(r.filters)} for r in scanning.rules]
    wanted = next((r for r in rules if r["scanFrequency"] == frequency), None)
    if wanted is None:
        wanted = {"scanFrequency": frequency, "filters": []}
        rules.append(wanted)
    wanted["filters"] += [p for p in patterns if p not in wanted["filters"]]
    body = [
        {
            "scanFrequency": r["scanFrequency"],
            "repositoryFilters": [{"filter": f, "filterType": "WILDCARD"} for f in r["filters"]],
        }
        for r in rules
    ]
    return (
        f"aws ecr put-registry-scanning-configuration --scan-type {scan_type} --rules '{json.dumps(body)}'\n"
        "(this replaces the registry's scanning rules: the command keeps the current ones; ENHANCED needs Amazon "
        "Inspector enabled for ECR. Console: Amazon ECR > Private registry > Scanning)"
    )


def _enable_rule(ref: RuleRef, state: str) -> str:
    if state == "missing":
        return f"{ref.name}: recreate it with `sam deploy` (the stack's template has it)"
    bus = f" --event-bus-name {ref.bus}" if ref.bus != "default" else ""
    return f"aws events enable-rule --name {ref.name}{bus}"


def _dead_letter_fix(name: str, url: str, environment: str) -> str:
    read = f"aws sqs receive-message --queue-url {url} --max-number-of-messages 10 --attribute-names All"
    if name.endswith("-slack-dlq"):
        return f"once the webhook works again: ecr-warden slack-redrive --environment {environment}\n(to look: {read})"
    return (
        f"read why (each message carries the event and the error): {read}\n"
        "fix the cause (README: Bad input), then send the events again with `ecr-warden send FILE`, and delete them"
    )


def _latest_decision(dynamodb: Any, table: str) -> dict[str, Any] | None:
    """The most recent decision: one item per status from the by-status index, newest first (a few reads, whatever
    the table's size)."""
    latest: dict[str, Any] | None = None
    for status in DECISION_STATUSES:
        items = dynamodb.query(
            TableName=table,
            IndexName="by-status",
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": status}},
            ScanIndexForward=False,
            Limit=1,
        ).get("Items", [])
        if items and (latest is None or items[0]["updated_at"]["S"] > latest["updated_at"]["S"]):
            latest = items[0]
    return latest


def _ago(timestamp: str) -> str:
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "time unknown"
    seconds = max(0, int((datetime.now(UTC) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def main(argv: list[str] | None = None) -> int:
    """`python -m ecr_warden_tools.doctor`: the same as `ecr-warden doctor`."""
    parser = argparse.ArgumentParser(prog="ecr-warden doctor", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
