"""The audit record: one item per image (account, region, repository, digest): its status and decision history."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from ecr_warden.domain.findings import Finding

HISTORY_LIMIT = 100


class ImageStatus(StrEnum):
    PENDING = "PENDING"  # known (e.g. a multi-arch child), not decided yet
    PASSED = "PASSED"
    TAGGED = "TAGGED"
    QUARANTINED = "QUARANTINED"
    ARCHIVED = "ARCHIVED"
    RELEASED = "RELEASED"
    EXEMPT = "EXEMPT"
    AUDITED = "AUDITED"  # audit mode: decided and reported, nothing changed in ECR
    SCAN_FAILED = "SCAN_FAILED"
    UNSCANNED = "UNSCANNED"  # no scan result in time after the push (announced; the policy may block instead)
    SKIPPED = "SKIPPED"


BLOCKED = frozenset({ImageStatus.QUARANTINED, ImageStatus.ARCHIVED})


class HistoryEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    action: str
    status: str
    reason: str
    trigger: str
    event_id: str | None = None


class PendingAnnouncement(BaseModel):
    """The outbox: the announcement a decision that changes ECR owes, written ahead with it and cleared once sent.
    A run that stopped before (an error, a timeout, a crash) leaves it: a retry with the same fingerprint completes
    ECR and sends it under the same decision_id, which consumers deduplicate on."""

    model_config = ConfigDict(frozen=True)

    fingerprint: str | None
    action: str
    previous: ImageStatus | None = None
    tags: list[str] | None = None
    reason: str
    decision_id: str | None = None
    tag_now_on: str | None = None  # tag_reused: the digest the reused tag points at now


class ImageRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    repository: str
    digest: str
    account: str | None = None  # set by the store from its scope: the registry that holds the image
    region: str | None = None
    status: ImageStatus
    version: int = 0
    updated_at: datetime
    original_tags: list[str] = Field(default_factory=list)
    quarantine_tag: str | None = None
    marker_tag: str | None = None
    verdict: str | None = None
    rule: str | None = None
    fingerprint: str | None = None
    released_fingerprint: str | None = None
    released_from: ImageStatus | None = None  # the blocked state a release undid (how to finish it if interrupted)
    severity_counts: dict[str, int] = Field(default_factory=dict)
    top_findings: list[Finding] = Field(default_factory=list)
    counted_ids: list[str] = Field(default_factory=list)  # every finding behind the verdict
    findings_total: int = 0
    index_digests: list[str] = Field(default_factory=list)
    child_digests: list[str] = Field(default_factory=list)
    exempt_until: datetime | None = None
    audit_action: str | None = None
    awaiting_findings: dict[str, int] | None = None  # the scanner's counts, while its findings are not listed
    # When the latest scan result the gate took in was made (its event's time, whole seconds, UTC); set: the image
    # has a scan result, whatever its status. Orders results that arrive late or twice.
    scanned_at: datetime | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
    pending_announcement: PendingAnnouncement | None = None  # owed until sent (see PendingAnnouncement)
    incomplete: str | None = None  # what the last run could not finish in ECR (cleared when a run completes)

    def remember(self, entry: HistoryEntry) -> None:
        self.history = [*self.history, entry][-HISTORY_LIMIT:]


def merge_tags(existing: list[str], new: list[str]) -> list[str]:
    """Union that keeps the first-seen order, so release restores tags in the order they were recorded."""
    return list(dict.fromkeys([*existing, *new]))
