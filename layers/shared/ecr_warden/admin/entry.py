"""The admin function's entry: a payload from `aws lambda invoke` (or the CLI) to a JSON result.

    process(payload, settings, account=..., request_id=...) -> {"ok": true, "action": ..., "result": {...}}
                                                              | {"ok": false, "error": {"type", "field", "message"}}

An invalid payload or a request the current state refuses is answered with a structured error naming the field:
no stack trace, nothing changed, nothing parked. Every action that ran is recorded in the admin log (the audit
table) with who asked, when and why. `aws lambda invoke` carries no verified identity, so the requester is the
payload's `by`, recorded as unverified; a caller that has verified the IAM identity passes it as
`verified_identity`. Unexpected errors propagate: Lambda retries an asynchronous invocation under the same request
id, and every action finishes what an interrupted run left undone."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ecr_warden.actions.registry import ReleaseError, RequestRejected
from ecr_warden.adapters.exemptions import DynamoExemptions
from ecr_warden.admin.ports import AdminTools
from ecr_warden.admin.requests import InvalidRequest, parse, split_target
from ecr_warden.admin.service import AdminService
from ecr_warden.domain.images import Scope
from ecr_warden.errors import EventValidationError, PermanentError
from ecr_warden.observability import MetricUnit, logger, metrics
from ecr_warden.runtime import connect_accounts, policy_source, settings_ports
from ecr_warden.settings import AdminSettings

if TYPE_CHECKING:
    from ecr_warden.gate.dispatch import ScanGate
    from ecr_warden.policy.model import Policy
    from ecr_warden.repository_settings.service import SettingsGuard
    from ecr_warden.runs.service import RunTools

# Every adapter the admin function is wired with (their modules' IAM_ACTIONS), and the remediation actions it runs;
# its IAM is what these declare, plus the settings guard's setting actions for `enforce` (tests/unit/test_template.py
# compares). Named, not imported: a request loads only the adapters its action uses (the cold start).
ADAPTERS = (
    "ecr_warden.adapters.registry",
    "ecr_warden.adapters.inspector",
    "ecr_warden.adapters.audit_store",
    "ecr_warden.adapters.decision_bus",
    "ecr_warden.adapters.policy_source",
    "ecr_warden.adapters.exemptions",
    "ecr_warden.adapters.scans",
    "ecr_warden.adapters.repository_settings",
    "ecr_warden.adapters.inventory",
    "ecr_warden.adapters.continuation",
    "ecr_warden.adapters.runs",
)
REMEDIATIONS = ("release", "quarantine", "exempt", "rescan", "enforce", "report", "sweep", "run")

ToolsFactory = Callable[[AdminSettings, str, str, str, bool], AdminTools]


def build_tools(settings: AdminSettings, account: str, request_id: str, by: str, verified: bool) -> AdminTools:
    """The admin tools acting in `account` and the settings' region: in organization mode another account's
    registry is reached through the member role (a run's batch step), records stay in the central table. The gate,
    the settings guard, the scanner, the inventory and the runs are built (and their modules imported) when the
    action first uses them."""
    from ecr_warden.adapters.continuation import LambdaContinuation
    from ecr_warden.adapters.inventory import EcrInventory
    from ecr_warden.adapters.scans import EcrScans

    scope = Scope(account, settings.region)
    remote = scope if connect_accounts(settings) else None
    policy = policy_source(settings).get()
    exemptions = DynamoExemptions(settings.audit_table_name, scope)

    def gate() -> ScanGate:
        return _gate(settings, policy, account, scope, remote, exemptions)

    def settings_guard(dry_run: bool) -> SettingsGuard:
        return _settings_guard(settings, policy, account, scope, remote, dry_run)

    own = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")  # a scheduled sweep continues in a new invocation of it
    return AdminTools(
        policy=policy,
        now=_utc_now,
        make_gate=gate,
        exemptions=exemptions,
        scans=EcrScans(scope=remote),
        settings_guard=settings_guard,
        request_id=request_id,
        by=by,
        verified=verified,
        governs=settings.governs,
        inventory=EcrInventory(settings.audit_table_name, scope),
        account=account,
        region=settings.region,
        continuation=LambdaContinuation(own) if own else None,
        make_runs=lambda: run_tools(settings),
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _gate(
    settings: AdminSettings, policy: Policy, account: str, scope: Scope, remote: Scope | None, exemptions: Any
) -> ScanGate:
    from ecr_warden.adapters.audit_store import DynamoAuditStore
    from ecr_warden.adapters.decision_bus import EventBridgeAnnouncer
    from ecr_warden.adapters.inspector import InspectorFindings
    from ecr_warden.adapters.registry import EcrRegistry
    from ecr_warden.gate.context import GateContext
    from ecr_warden.gate.dispatch import ScanGate
    from ecr_warden.gate.ports import Ports

    ctx = GateContext(
        policy=policy, mode=settings.mode, account=account, region=settings.region, environment=settings.environment
    )
    ports = Ports(
        registry=EcrRegistry(scope=remote),
        enhanced=InspectorFindings(scope=remote),
        store=DynamoAuditStore(settings.audit_table_name, scope),
        announcer=EventBridgeAnnouncer(settings.decision_bus_name),
        exemptions=exemptions,
    )
    return ScanGate(ctx, ports)


def _settings_guard(
    settings: AdminSettings, policy: Policy, account: str, scope: Scope, remote: Scope | None, dry_run: bool
) -> SettingsGuard:
    from ecr_warden.repository_settings.context import SettingsContext
    from ecr_warden.repository_settings.service import SettingsGuard

    # The registry-level scanning configuration is the settings guard's alone to write (SettingsRegistryWrites grants
    # it to that role only): enforce reports a registry gap, as the guard does without the grant.
    desired = policy.repository_settings.model_copy(update={"registry_scanning": "report"})
    guard_ctx = SettingsContext(
        policy=policy.model_copy(update={"repository_settings": desired}),
        mode="audit" if dry_run else settings.mode,
        account=account,
        region=settings.region,
        environment=settings.environment,
        governed_repositories=settings.governed_repositories,
    )
    return SettingsGuard(guard_ctx, settings_ports(settings, scope, remote))


def run_tools(settings: AdminSettings) -> RunTools | None:
    if not settings.run_queue_url:
        return None
    from ecr_warden.adapters.inventory import EcrInventory
    from ecr_warden.adapters.runs import DynamoRunProgress, SqsRunQueue, unreachable
    from ecr_warden.runs.ports import RunPorts
    from ecr_warden.runs.service import RunEngine, RunTools

    organization = connect_accounts(settings)
    directory = None
    if organization:
        from ecr_warden.adapters.organization import OrganizationsDirectory

        directory = OrganizationsDirectory()
    ports = RunPorts(
        queue=SqsRunQueue(settings.run_queue_url),
        progress=DynamoRunProgress(settings.audit_table_name),
        lister=lambda scope: EcrInventory(settings.audit_table_name, scope),
        directory=directory,
        unreachable=unreachable,
    )
    return RunTools(RunEngine(ports), settings.regions, organization)


def process(
    payload: Any,
    settings: AdminSettings,
    account: str,
    request_id: str | None = None,
    verified_identity: str | None = None,
    tools_factory: ToolsFactory = build_tools,
) -> dict[str, Any]:
    """`request_id`: the invocation's id (Lambda's aws_request_id, kept across its retries); a new one if None.
    `verified_identity`: the caller's IAM identity when the invocation path verified it (never for plain invoke)."""
    request_id = request_id or str(uuid.uuid4())
    target_account = target_region = None
    try:
        payload, target_account, target_region = split_target(payload)
        request = parse(payload)
        settings, account = _acting_in(settings, account, target_account, target_region)
        by = verified_identity or request.by
        logger.append_keys(admin_action=request.action, admin_request_id=request_id, account=account,
                           region=settings.region)  # fmt: skip
        logger.info("admin request", by=by, by_verified=verified_identity is not None)
        try:
            tools = tools_factory(settings, account, request_id, by, verified_identity is not None)
            result = AdminService(tools).handle(request)
        except Exception as error:
            # a member registry the member role doesn't open (no member stack, an account outside the organization,
            # a region not enabled): a one-line refusal, nothing changed; anything else propagates (Lambda retries)
            if not (target_account or target_region):
                raise
            from ecr_warden.adapters.runs import unreachable  # only for requests that name another registry

            why = unreachable(error)
            if why is None:
                raise
            raise RequestRejected("account", f"{account}/{settings.region} can't be reached: {why}") from None
    except InvalidRequest as error:
        return _error("invalid_request", error.field, error.message)
    except RequestRejected as error:
        return _error("rejected", error.field, error.message)
    except ReleaseError as error:
        return _error("rejected", "digest", str(error))
    except EventValidationError as error:
        return _error("invalid_request", error.field, error.reason)
    except PermanentError as error:  # e.g. the policy parameter is invalid: an operator must fix it
        return _error("configuration", "<root>", str(error))
    metrics.add_metric(name="AdminRequestsDone", unit=MetricUnit.Count, value=1)
    # a report is data for people, possibly large: its log line says what it covered (CloudWatch's 256 KB per event)
    logged = (
        {"summary": result.get("summary"), "more": bool(result.get("next_token"))}
        if request.action == "report"
        else result
    )
    logger.info("admin request done", result=logged)
    return {
        "ok": True,
        "action": request.action,
        "account": account,
        "region": settings.region,
        "request_id": request_id,
        "requested_by": {"identity": by, "verified": verified_identity is not None},
        "result": result,
    }


def _acting_in(settings: AdminSettings, own: str, account: str | None, region: str | None) -> tuple[AdminSettings, str]:
    """The settings and account a request acts with: the deployment's own, or (organization mode) the registry
    it names, reached through the member role there."""
    account, region = account or own, region or settings.region
    if (account, region) == (own, settings.region):
        return settings, own
    if not settings.member_role_name:
        field = "account" if account != own else "region"
        raise InvalidRequest(field, f"a single-account deployment acts in {own}/{settings.region} only "
                             "(organization mode: deploy with OrganizationId, docs/ORGANIZATION.md)")  # fmt: skip
    return settings.in_region(region), account


def _error(kind: str, field: str, message: str) -> dict[str, Any]:
    logger.warning("admin request refused", error_type=kind, field=field, error=message)
    metrics.add_metric(name="AdminRequestsRefused", unit=MetricUnit.Count, value=1)
    return {"ok": False, "error": {"type": kind, "field": field, "message": message}}


def process_run_steps(
    raw: dict[str, Any], settings: AdminSettings, account: str, tools_factory: ToolsFactory = build_tools
) -> dict[str, Any]:
    """Run-queue messages (ecr_warden.runs): each step in its own registry's account and region. A malformed
    message is parked once in the dead-letter queue; a step that fails is reported for its record alone, so SQS
    retries it (its progress is counted once, when it finishes) and then moves it to the run's dead-letter queue,
    from which a redrive resumes the run."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from ecr_warden.runs.jobs import work
    from ecr_warden.runs.model import RunStep
    from ecr_warden.runs.service import UNREACHABLE, StepRejected
    from ecr_warden.runtime import queued_message, reject

    runs = run_tools(settings)
    if runs is None:
        raise PermanentError("run steps arrived, but RUN_QUEUE_URL is not set")

    def one(record: SQSRecord) -> str:
        step = queued_message(record.body, RunStep, "run step", settings)
        if step is None:
            return "rejected"
        logger.append_keys(run_id=step.run_id, run_scope=step.group)

        def in_scope(step: RunStep) -> Any:
            scoped = settings.in_region(step.region)
            return work(step, tools_factory(scoped, step.account, f"{step.run_id}#{step.key}", step.run_id, False))

        try:
            result = runs.engine.step(step, in_scope)
        except StepRejected as error:  # no such run, or another job's: parked, never worked on
            reject({"run-step": record.body}, error, settings, None)
            return "rejected"
        if result.startswith(UNREACHABLE):
            metrics.add_metric(name="RunRegistriesUnreachable", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="RunStepsDone", unit=MetricUnit.Count, value=1)
        return result

    processor = BatchProcessor(event_type=EventType.SQS)
    return dict(process_partial_response(event=raw, record_handler=one, processor=processor))
