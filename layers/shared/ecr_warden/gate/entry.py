"""From a raw EventBridge event to a decision: parse, wire the real adapters, handle, report.

Bad input is answered once: logged with context, counted, parked in the dead-letter queue, and never retried.
Unexpected errors propagate so Lambda retries the event and finally sends it to the on-failure destination.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ecr_warden.adapters.audit_store import ConcurrentUpdateError, DynamoAuditStore
from ecr_warden.adapters.dead_letter import SqsDeadLetter
from ecr_warden.adapters.decision_bus import EventBridgeAnnouncer
from ecr_warden.adapters.inspector import InspectorFindings
from ecr_warden.adapters.policy_source import SsmPolicySource
from ecr_warden.adapters.registry import EcrRegistry
from ecr_warden.config import Settings
from ecr_warden.contracts.parsing import parse_aws_event
from ecr_warden.errors import ConfigurationError, PermanentError
from ecr_warden.gate.service import ScanGate
from ecr_warden.observability import MetricUnit, logger, metrics

# One policy source per container: Powertools Parameters caches the parameter, this caches the parsed policy.
_policy_sources: dict[str | None, SsmPolicySource] = {}


def shared_policy_source(settings: Settings) -> SsmPolicySource:
    return _policy_sources.setdefault(settings.policy_parameter_name, SsmPolicySource(settings.policy_parameter_name))


def build_gate(settings: Settings, account: str) -> ScanGate:
    if not settings.audit_table_name or not settings.decision_bus_name:
        raise ConfigurationError("AUDIT_TABLE_NAME and DECISION_BUS_NAME must be set")
    return ScanGate(
        policy=shared_policy_source(settings).get(),
        settings=settings,
        registry=EcrRegistry(),
        enhanced=InspectorFindings(),
        store=DynamoAuditStore(settings.audit_table_name),
        announcer=EventBridgeAnnouncer(settings.decision_bus_name),
        account=account,
    )


def reject(
    raw: Any, error: PermanentError, settings: Settings, dead_letter: SqsDeadLetter | None = None
) -> dict[str, Any]:
    detail_type = raw.get("detail-type") if isinstance(raw, dict) else None
    event_id = raw.get("id") if isinstance(raw, dict) else None
    logger.error(
        "event rejected",
        error=str(error),
        error_type=type(error).__name__,
        detail_type=detail_type,
        event_id=event_id,
    )
    metrics.add_metric(name="RejectedEvents", unit=MetricUnit.Count, value=1)
    dead_letter = dead_letter or (
        SqsDeadLetter(settings.dead_letter_queue_url) if settings.dead_letter_queue_url else None
    )
    if dead_letter is not None:
        dead_letter.send(raw, error, settings.function_name)
    return {"status": "rejected", "error": str(error)}


def process(
    raw: Any,
    settings: Settings | None = None,
    gate_factory: Callable[[Settings, str], ScanGate] = build_gate,
    dead_letter: SqsDeadLetter | None = None,
) -> dict[str, Any]:
    settings = settings or Settings.from_env()
    try:
        event = parse_aws_event(raw)
        gate = gate_factory(settings, event.account)
    except PermanentError as error:
        return reject(raw, error, settings, dead_letter)
    logger.append_keys(detail_type=event.detail_type, event_id=event.id)
    for attempt in (1, 2):
        try:
            outcome = gate.handle(event)
            break
        except ConcurrentUpdateError:  # another delivery of the same image won the race: re-read, re-decide
            if attempt == 2:
                raise
        except PermanentError as error:
            return reject(raw, error, settings, dead_letter)
    logger.info(
        "decision",
        repository=outcome.repository,
        digest=outcome.digest,
        action=str(outcome.action),
        status=str(outcome.status),
        reason=outcome.reason,
    )
    metrics.add_metric(name="EventsHandled", unit=MetricUnit.Count, value=1)
    return {
        "action": str(outcome.action),
        "status": str(outcome.status),
        "repository": outcome.repository,
        "digest": outcome.digest,
        "reason": outcome.reason,
    }
