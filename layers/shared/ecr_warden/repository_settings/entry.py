"""From a raw invocation to outcomes: a CloudTrail event from EventBridge, the schedule's reconcile request, or a
batch of repositories from the fan-out queue. Wires the real adapters; bad input is answered once
(runtime.reject); unexpected errors propagate so Lambda (or SQS) retries."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ecr_warden.adapters.dead_letter import SqsDeadLetter
from ecr_warden.adapters.decision_bus import EventBridgeAnnouncer
from ecr_warden.adapters.policy_source import SsmPolicySource
from ecr_warden.adapters.repository_settings import DynamoSettingsAudit, EcrSettingsRegistry, SqsFanOut
from ecr_warden.contracts.aws_events import CloudTrailEcrEvent
from ecr_warden.contracts.common import RepositoryName
from ecr_warden.contracts.parsing import parse_aws_event, validate_model
from ecr_warden.domain.images import Scope
from ecr_warden.errors import EventValidationError, ForeignEventError, PermanentError, UnsupportedEventError
from ecr_warden.observability import MetricUnit, logger, metrics
from ecr_warden.repository_settings.context import Outcome, SettingsContext
from ecr_warden.repository_settings.service import SettingsGuard
from ecr_warden.runtime import DeadLetter, connect_accounts, policy_source, queued_message, reject, settings_ports
from ecr_warden.settings import SettingsGuardSettings

# Every adapter the settings guard is wired with; its IAM is what these and its actions declare
# (tests/unit/test_template.py compares).
ADAPTERS = (EcrSettingsRegistry, DynamoSettingsAudit, EventBridgeAnnouncer, SqsFanOut, SqsDeadLetter, SsmPolicySource)
Account = str
REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-\d$"


class ReconcileRequest(BaseModel):
    """The schedule's input (template.yaml): start a reconcile run over every managed repository."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    request: Literal["reconcile"] = Field(alias="ecr-warden")
    account: str = Field(pattern=r"^\d{12}$")
    region: str | None = Field(None, pattern=REGION_PATTERN)  # organization mode: a member region (default: own)
    execution_id: str | None = Field(None, max_length=200)


class ReconcileBatch(BaseModel):
    """One fan-out message: some repositories of a reconcile run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["reconcile"]
    run_id: str = Field(min_length=1, max_length=300)
    account: str = Field(pattern=r"^\d{12}$")
    region: str | None = Field(None, pattern=REGION_PATTERN)
    repositories: list[RepositoryName] = Field(max_length=100)


def build_guard(settings: SettingsGuardSettings, account: Account) -> SettingsGuard:
    scope = Scope(account, settings.region)
    remote = scope if connect_accounts(settings) else None  # organization mode: the account's own registry
    member_role = settings.member_role_arn(account, settings.region)  # its calls there come back through CloudTrail
    ctx = SettingsContext(
        policy=policy_source(settings).get(),
        mode=settings.mode,
        account=account,
        region=settings.region,
        environment=settings.environment,
        own_roles=settings.own_roles + ((member_role,) if member_role else ()),
        governed_repositories=settings.governed_repositories,
    )
    return SettingsGuard(ctx, settings_ports(settings, scope, remote))


GuardFactory = Callable[[SettingsGuardSettings, Account], SettingsGuard]


def process(
    raw: Any,
    settings: SettingsGuardSettings,
    guard_factory: GuardFactory = build_guard,
    dead_letter: DeadLetter | None = None,
) -> dict[str, Any]:
    if isinstance(raw, dict) and "Records" in raw:
        return _batch(raw, settings, guard_factory, dead_letter)
    try:
        if isinstance(raw, dict) and "ecr-warden" in raw:
            request = validate_model(ReconcileRequest, raw, what="reconcile request")
            guard = guard_factory(settings.in_region(request.region or settings.region), request.account)
            outcome = guard.start_reconcile(request.execution_id or str(uuid.uuid4()))
        else:
            event = _cloudtrail(raw)
            logger.append_keys(event_id=event.id, event_name=event.detail.event_name)
            outcome = guard_factory(settings.in_region(event.region), event.account).on_api_call(event)
    except PermanentError as error:
        return reject(raw, error, settings, dead_letter)
    return _report(outcome)


def _cloudtrail(raw: Any) -> CloudTrailEcrEvent:
    try:
        event = parse_aws_event(raw)
    except ForeignEventError as foreign:
        raise UnsupportedEventError(foreign.detail_type, foreign.resource) from None
    except (OverflowError, OSError) as exc:  # an epoch timestamp out of range escapes pydantic's ValueError net
        raise EventValidationError(what="event", field="time", reason=f"timestamp out of range: {exc}") from None
    if not isinstance(event, CloudTrailEcrEvent):
        raise UnsupportedEventError(event.source, event.detail_type)
    return event


def _report(outcome: Outcome) -> dict[str, Any]:
    logger.info(
        "settings outcome",
        result=outcome.result,
        repository=outcome.repository,
        reason=outcome.reason,
        changes=list(outcome.changes),
    )
    metric = {"enforced": "SettingsEnforced", "would_enforce": "SettingsDrift", "reported": "SettingsReported"}
    if outcome.result in metric:
        metrics.add_metric(name=metric[outcome.result], unit=MetricUnit.Count, value=1)
    if outcome.result == "ignored" and outcome.reason == "ecr-warden's own call":
        metrics.add_metric(name="OwnCallsIgnored", unit=MetricUnit.Count, value=1)
    return {
        "result": outcome.result,
        "repository": outcome.repository,
        "reason": outcome.reason,
        "changes": list(outcome.changes),
    }


def _batch(
    raw: dict[str, Any], settings: SettingsGuardSettings, guard_factory: GuardFactory, dead_letter: DeadLetter | None
) -> dict[str, Any]:
    """Fan-out messages. A bad message is parked once; a failure is reported for its record alone, so SQS retries
    that one (repositories already done are not acted on again) and then moves it to the dead-letter queue."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    def reconcile(record: SQSRecord) -> str:
        batch = queued_message(record.body, ReconcileBatch, "reconcile batch", settings, dead_letter)
        if batch is None:
            return "rejected"
        guard = guard_factory(settings.in_region(batch.region or settings.region), batch.account)
        outcomes = guard.reconcile(batch.run_id, list(batch.repositories))
        for outcome in outcomes:
            if outcome.result != "compliant":
                _report(outcome)
        return f"{len(outcomes)} reconciled"

    processor = BatchProcessor(event_type=EventType.SQS)
    return dict(process_partial_response(event=raw, record_handler=reconcile, processor=processor))
