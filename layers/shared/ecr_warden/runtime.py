"""What every function's entry shares: rejecting bad input to the dead-letter queue, the policy source, and the
AWS client wiring. No function's entry imports another's; they all import this."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ecr_warden.adapters.dead_letter import SqsDeadLetter
from ecr_warden.adapters.policy_source import SsmPolicySource
from ecr_warden.errors import PermanentError
from ecr_warden.observability import MetricUnit, logger, metrics
from ecr_warden.settings import FunctionSettings

if TYPE_CHECKING:
    from ecr_warden.domain.images import Scope
    from ecr_warden.repository_settings.ports import SettingsPorts
    from ecr_warden.settings import AdminSettings, SettingsGuardSettings

ModelT = TypeVar("ModelT")


class DeadLetter(Protocol):
    def send(self, event: Any, error: Exception, function_name: str) -> None: ...


# One policy source per container: Powertools Parameters caches the parameter, this caches the parsed policy.
_policy_sources: dict[str | None, SsmPolicySource] = {}


def policy_source(settings: FunctionSettings) -> SsmPolicySource:
    name = settings.policy_parameter_name
    return _policy_sources.setdefault(name, SsmPolicySource(name))


def connect_accounts(settings: FunctionSettings) -> bool:
    """Organization mode: other accounts are reached through the member role (adapters.aws). False (and nothing
    done) in a single-account deployment."""
    if not settings.member_role_name:
        return False
    from ecr_warden.adapters import aws

    aws.configure(settings.member_role_name, settings.home_account or None)
    return True


def settings_ports(
    settings: SettingsGuardSettings | AdminSettings, scope: Scope, remote: Scope | None
) -> SettingsPorts:
    """The settings guard's ports in `scope`'s registry (through the member role when `remote`), its records and
    announcements in the central table and bus: for the guard's own function and the admin's `enforce`."""
    from ecr_warden.adapters.decision_bus import EventBridgeAnnouncer
    from ecr_warden.adapters.repository_settings import DynamoSettingsAudit, EcrSettingsRegistry, SqsFanOut
    from ecr_warden.repository_settings.ports import SettingsPorts

    return SettingsPorts(
        registry=EcrSettingsRegistry(scope=remote),
        audit=DynamoSettingsAudit(settings.audit_table_name, scope),
        announcer=EventBridgeAnnouncer(settings.decision_bus_name),
        fan_out=SqsFanOut(settings.reconcile_queue_url),
    )


def forget_policy_sources() -> None:
    """Tests switch parameters between cases."""
    _policy_sources.clear()


def reject(
    raw: Any, error: PermanentError, settings: FunctionSettings, dead_letter: DeadLetter | None = None
) -> dict[str, Any]:
    """Bad input is answered once: logged with context, counted, parked in the dead-letter queue, never retried."""
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
    if dead_letter is None and settings.dead_letter_queue_url:
        dead_letter = SqsDeadLetter(settings.dead_letter_queue_url)
    if dead_letter is not None:
        dead_letter.send(raw, error, settings.function_name)
    return {"status": "rejected", "error": str(error)}


def queued_message(
    body: str, model: type[ModelT], what: str, settings: FunctionSettings, dead_letter: DeadLetter | None = None
) -> ModelT | None:
    """One of our own queue's messages, validated; None when it is malformed, after parking it once (a retry
    can't mend it)."""
    from ecr_warden.contracts.parsing import validate_model

    try:
        return validate_model(model, json.loads(body), what=what)  # type: ignore[type-var]
    except (ValueError, PermanentError) as error:
        permanent = error if isinstance(error, PermanentError) else PermanentError(f"not JSON: {error}")
        reject({what.replace(" ", "-"): body}, permanent, settings, dead_letter)
        return None
