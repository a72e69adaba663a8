"""The small value objects the gate passes around: who decides (context), about what (case), with what result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from ecr_warden.contracts.decision import Action, DecisionDetail
from ecr_warden.domain.images import ImageRef, Observed
from ecr_warden.domain.records import HistoryEntry, ImageRecord, ImageStatus
from ecr_warden.gate.evaluate import Decision
from ecr_warden.policy.model import Policy


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Trigger:
    """What made the gate act: an event (its detail-type and id) or an admin."""

    name: str
    event_id: str | None


@dataclass(frozen=True)
class GateContext:
    """Everything a decision depends on besides the image: the policy, the mode, and where the gate runs."""

    policy: Policy
    mode: Literal["enforce", "audit"]
    account: str
    region: str
    environment: str
    now: Callable[[], datetime] = field(default=utc_now)

    @property
    def audit_mode(self) -> bool:
        return self.mode == "audit"

    def is_own_tag(self, tag: str, digest: str, record: ImageRecord | None) -> bool:
        """Exactly the tags ecr-warden put on this digest: by the current policy, or as recorded (a changed
        prefix must never make our own quarantine tag look foreign; removing it could delete the image)."""
        recorded = (record.quarantine_tag, record.marker_tag) if record else ()
        return self.policy.is_own_tag(tag, digest) or tag in recorded

    def entry(self, action: Action, status: ImageStatus, reason: str, trigger: Trigger) -> HistoryEntry:
        return HistoryEntry(
            at=self.now(),
            action=action.value,
            status=status,
            reason=reason,
            trigger=trigger.name,
            event_id=trigger.event_id,
        )


@dataclass(frozen=True)
class Case:
    """One decision about one image: the tags its event named, the decision, the stored record, the trigger."""

    image: ImageRef
    tags: list[str]
    decision: Decision
    record: ImageRecord | None
    trigger: Trigger
    observed: Observed | None = None  # the image's details and manifest, if this invocation just read them

    @property
    def previous(self) -> ImageStatus | None:
        return self.record.status if self.record else None

    @property
    def version(self) -> int:
        return self.record.version if self.record else 0


@dataclass(frozen=True)
class Outcome:
    """What one event did to one image: the action, why, the status it left, and what was announced."""

    repository: str
    digest: str
    action: Action
    reason: str
    status: str | None = None
    announced: DecisionDetail | None = None

    @classmethod
    def noop(cls, image: ImageRef, reason: str, status: str | None = None) -> Outcome:
        return cls(image.repository, image.digest, Action.NOOP, reason, status)
