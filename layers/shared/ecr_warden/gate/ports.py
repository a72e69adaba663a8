"""What the gate needs from the outside world. Adapters implement these; tests pass in-memory fakes
(tests/fakes.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ecr_warden.contracts.checks import FindingsCheck, UnscannedCheck
from ecr_warden.contracts.decision import DecisionDetail
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.images import ImageInfo, Manifest, Observed
from ecr_warden.domain.records import HistoryEntry, ImageRecord
from ecr_warden.policy.model import Exemption, Policy


class Registry(Protocol):
    def describe(self, repository: str, digest: str) -> ImageInfo | None: ...
    def manifest(self, repository: str, digest: str) -> Manifest | None: ...
    def add_tag(self, repository: str, digest: str, manifest: Manifest, tag: str) -> None: ...
    def remove_tags(self, repository: str, tags: list[str]) -> list[str]: ...
    def archive(self, repository: str, digest: str) -> None: ...
    def restore(self, repository: str, digest: str) -> None: ...
    def digest_of(self, repository: str, tag: str) -> str | None: ...
    def basic_findings(self, repository: str, digest: str) -> list[Finding] | None: ...
    def indexes_containing(self, repository: str, digest: str, pushed_since: datetime | None) -> list[Observed]: ...


class EnhancedFindings(Protocol):
    def active_findings(self, repository: str, digest: str) -> list[Finding]: ...
    def coverage(self, repository: str, digest: str, repository_arn: str) -> tuple[str, str | None] | None: ...


class AuditStore(Protocol):
    def get(self, repository: str, digest: str) -> ImageRecord | None: ...
    def save(self, record: ImageRecord, expected_version: int, claims: Sequence[str] = ()) -> ImageRecord: ...
    def tag_reuse_news(self, repository: str, tag: str, digest: str) -> str | None: ...
    def confirm_tag_reuse(self, repository: str, tag: str, holder: str, digest: str) -> None: ...
    def record_pass(self, record: ImageRecord, entry: HistoryEntry) -> str | None: ...
    def link_child(self, repository: str, child: str, index_digest: str, now: datetime) -> None: ...


class Exemptions(Protocol):
    """CVE exemptions in ecr-warden's own store (the admin function adds them), read at decision time."""

    def active(self, repository: str, now: datetime) -> list[Exemption]: ...


class DelayedChecks(Protocol):
    def schedule(self, check: FindingsCheck | UnscannedCheck) -> None: ...


class Announcer(Protocol):
    def publish(self, detail: DecisionDetail) -> None: ...


class PolicySource(Protocol):
    def get(self) -> Policy: ...


@dataclass
class Ports:
    """The gate's outside world in one place; every part of the gate shares this object, so a test can swap a
    port on a built gate."""

    registry: Registry
    enhanced: EnhancedFindings
    store: AuditStore
    announcer: Announcer
    checks: DelayedChecks | None = None  # None: nothing waits (a lagging scan is decided by its counts at once)
    exemptions: Exemptions | None = None  # None: only the policy's own exemptions apply
