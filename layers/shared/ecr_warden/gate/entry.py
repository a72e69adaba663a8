"""From a raw EventBridge event to a decision: parse, wire the real adapters, handle, report.

Bad input is answered once (runtime.reject). Unexpected errors propagate so Lambda retries the event and finally
sends it to the on-failure destination.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ecr_warden.adapters.audit_store import DynamoAuditStore
from ecr_warden.adapters.dead_letter import SqsDeadLetter
from ecr_warden.adapters.decision_bus import EventBridgeAnnouncer
from ecr_warden.adapters.delayed_checks import SqsDelayedChecks
from ecr_warden.adapters.exemptions import DynamoExemptions
from ecr_warden.adapters.inspector import InspectorFindings
from ecr_warden.adapters.policy_source import SsmPolicySource
from ecr_warden.adapters.registry import EcrRegistry
from ecr_warden.contracts.aws_events import AwsEvent, Inspector2FindingEvent
from ecr_warden.contracts.checks import FindingsCheck, UnscannedCheck, parse_check
from ecr_warden.contracts.parsing import parse_aws_event
from ecr_warden.domain.images import Scope
from ecr_warden.errors import ConcurrentUpdateError, ForeignEventError, PermanentError
from ecr_warden.gate.context import GateContext, Outcome
from ecr_warden.gate.dispatch import ScanGate
from ecr_warden.gate.ports import Ports
from ecr_warden.observability import MetricUnit, logger, metrics
from ecr_warden.runtime import DeadLetter, connect_accounts, policy_source, reject
from ecr_warden.settings import GateSettings

# Every adapter the gate is wired with, and the remediation actions it runs itself (auto-release on close); its IAM
# is what these declare (tests/unit/test_template.py compares).
ADAPTERS = (
    EcrRegistry,
    InspectorFindings,
    DynamoAuditStore,
    EventBridgeAnnouncer,
    SqsDelayedChecks,
    SqsDeadLetter,
    SsmPolicySource,
    DynamoExemptions,
)
REMEDIATIONS = ("release",)


def build_gate(settings: GateSettings, account: str) -> ScanGate:
    scope = Scope(account, settings.region)  # the image's registry: acted on there, recorded under it
    # organization mode reaches every account and region by scope; a single account keeps its own clients, as before
    remote = scope if connect_accounts(settings) else None
    ctx = GateContext(
        policy=policy_source(settings).get().for_scope(scope.account, scope.region),
        mode=settings.mode,
        account=scope.account,
        region=scope.region,
        environment=settings.environment,
    )
    ports = Ports(
        registry=EcrRegistry(scope=remote),
        enhanced=InspectorFindings(scope=remote),
        store=DynamoAuditStore(settings.audit_table_name, scope),
        announcer=EventBridgeAnnouncer(settings.decision_bus_name),
        checks=SqsDelayedChecks(settings.delayed_checks_queue_url),
        exemptions=DynamoExemptions(settings.audit_table_name, scope),  # the admin function's, read per decision
    )
    return ScanGate(ctx, ports)


def process(
    raw: Any,
    settings: GateSettings,
    gate_factory: Callable[[GateSettings, str], ScanGate] = build_gate,
    dead_letter: DeadLetter | None = None,
) -> dict[str, Any]:
    if isinstance(raw, dict) and "Records" in raw:
        return _delayed_checks(raw, settings, gate_factory, dead_letter)
    try:
        event = parse_aws_event(raw)
        repository = _repository(event)
        if repository is not None and not settings.governs(repository):
            return _ungoverned(repository, settings)
        gate = gate_factory(settings.in_region(event.region), event.account)  # forwarded events keep theirs
    except ForeignEventError as foreign:
        logger.info("event ignored: not about an ECR image", reason=str(foreign))
        metrics.add_metric(name="ForeignEventsIgnored", unit=MetricUnit.Count, value=1)
        return {"status": "ignored", "reason": str(foreign)}
    except PermanentError as error:
        return reject(raw, error, settings, dead_letter)
    logger.append_keys(detail_type=event.detail_type, event_id=event.id)
    try:
        outcome = _handle(gate, event)
    except PermanentError as error:
        return reject(raw, error, settings, dead_letter)
    logger.info(
        "decision",
        repository=outcome.repository,
        digest=outcome.digest,
        action=outcome.action.value,
        status=str(outcome.status),
        reason=outcome.reason,
    )
    metrics.add_metric(name="EventsHandled", unit=MetricUnit.Count, value=1)
    return {
        "action": outcome.action.value,
        "status": str(outcome.status),
        "repository": outcome.repository,
        "digest": outcome.digest,
        "reason": outcome.reason,
    }


def _repository(event: AwsEvent) -> str | None:
    if isinstance(event, Inspector2FindingEvent):
        return event.detail.ecr_image.repository_name if event.detail.ecr_image else None
    name = getattr(event.detail, "repository_name", None)
    return name if isinstance(name, str) else None


def _ungoverned(repository: str, settings: GateSettings) -> dict[str, Any]:
    """Outside the repositories the deployment may change (its IAM grants no writes there): left alone, no AWS
    call, no dead letter."""
    reason = f"{repository} is outside GovernedRepositories ({settings.governed_repositories})"
    logger.info("event ignored: repository not governed", repository=repository)
    metrics.add_metric(name="UngovernedEventsIgnored", unit=MetricUnit.Count, value=1)
    return {"status": "ignored", "reason": reason}


def _handle(gate: ScanGate, item: AwsEvent | FindingsCheck | UnscannedCheck) -> Outcome:
    for attempt in (1, 2):
        try:
            if isinstance(item, FindingsCheck | UnscannedCheck):
                return gate.on_check(item)
            return gate.handle(item)
        except ConcurrentUpdateError:  # another delivery of the same image won the race: re-read, re-decide once
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _delayed_checks(
    raw: dict[str, Any],
    settings: GateSettings,
    gate_factory: Callable[[GateSettings, str], ScanGate],
    dead_letter: DeadLetter | None,
) -> dict[str, Any]:
    """A batch from the delayed-check queue. A bad message is parked once (never retried); a failure is reported
    for its record alone, so SQS retries that one and then moves it to the dead-letter queue."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    def check(record: SQSRecord) -> str:
        try:
            body = json.loads(record.body)
            due = parse_check(body)
        except (ValueError, PermanentError) as error:
            permanent = error if isinstance(error, PermanentError) else PermanentError(f"not JSON: {error}")
            reject({"delayed-check": record.body}, permanent, settings, dead_letter)
            return "rejected"
        outcome = _handle(gate_factory(settings.in_region(due.region), due.account), due)
        logger.info("delayed check", repository=outcome.repository, digest=outcome.digest,
                    action=outcome.action.value, reason=outcome.reason)  # fmt: skip
        return outcome.action.value

    processor = BatchProcessor(event_type=EventType.SQS)
    return dict(process_partial_response(event=raw, record_handler=check, processor=processor))
