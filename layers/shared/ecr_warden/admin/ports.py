"""What the admin actions work with: the gate (release, quarantine), ecr-warden's exemption store and admin log,
ECR's scanner and Inspector's coverage (rescan), and the settings guard (enforce). Adapters implement the
protocols (ecr_warden.adapters.exemptions, ecr_warden.adapters.scans); tests pass in-memory fakes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from ecr_warden.errors import WardenError
from ecr_warden.policy.model import Exemption, Policy

if TYPE_CHECKING:
    from ecr_warden.gate.dispatch import ScanGate
    from ecr_warden.repository_settings.service import SettingsGuard
    from ecr_warden.runs.service import RunTools

ANY_DIGEST = "*"


def iso(moment: datetime) -> str:
    """UTC, to the second: stored times compare as strings (the add's condition)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse(text: Any) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def exemption_key(repository: str, cve: str, digest: str | None) -> str:
    return f"{repository}#{cve}#{digest or ANY_DIGEST}"


@dataclass(frozen=True)
class StoredExemption:
    """One exemption in ecr-warden's store: scope (repository, CVE, one digest or any), expiry, why, who approved,
    who added it and, once revoked, who revoked it and why (a revoked exemption stays, for the record)."""

    repository: str
    cve: str
    digest: str | None
    expires: datetime
    reason: str
    approver: str
    added_by: str
    added_at: datetime
    request_id: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    revoke_request_id: str | None = None

    @property
    def sort_key(self) -> str:
        return exemption_key(self.repository, self.cve, self.digest)

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "active" if now < self.expires else "expired"

    def as_policy_exemption(self) -> Exemption:
        """The policy's own model, so the gate applies both kinds alike."""
        return Exemption(
            cve=self.cve,
            repositories=[self.repository],
            digest=self.digest,
            expires=self.expires,
            reason=self.reason,
            approver=self.approver,
        )

    def to_item(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "cve": self.cve,
            "image_digest": self.digest or ANY_DIGEST,
            "expires": iso(self.expires),
            "reason": self.reason,
            "approver": self.approver,
            "added_by": self.added_by,
            "added_at": iso(self.added_at),
            "request_id": self.request_id,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> StoredExemption:
        digest, revoked = item.get("image_digest"), item.get("revoked_at")
        return cls(
            repository=str(item["repository"]),
            cve=str(item["cve"]),
            digest=None if digest in (None, ANY_DIGEST) else str(digest),
            expires=_parse(item["expires"]),
            reason=str(item["reason"]),
            approver=str(item["approver"]),
            added_by=str(item.get("added_by", "")),
            added_at=_parse(item["added_at"]),
            request_id=str(item.get("request_id", "")),
            revoked_at=_parse(revoked) if revoked else None,
            revoked_by=item.get("revoked_by"),
            revoke_reason=item.get("revoke_reason"),
            revoke_request_id=item.get("revoke_request_id"),
        )

    def summary(self, now: datetime) -> dict[str, Any]:
        """For people and the CLI (JSON)."""
        found = {
            "repository": self.repository,
            "cve": self.cve,
            "digest": self.digest,
            "expires": iso(self.expires),
            "reason": self.reason,
            "approver": self.approver,
            "added_by": self.added_by,
            "added_at": iso(self.added_at),
            "state": self.state(now),
        }
        if self.revoked_at is not None:
            found.update(revoked_at=iso(self.revoked_at), revoked_by=self.revoked_by, revoke_reason=self.revoke_reason)
        return found


class ExemptionConflict(WardenError):
    """A write's condition failed: an active exemption has the key already (add), or it is not the one read or no
    longer active (revoke). `current`: the item as it is now."""

    def __init__(self, current: StoredExemption | None) -> None:
        self.current = current
        super().__init__("the exemption changed concurrently")


class ExemptionStore(Protocol):
    def active(self, repository: str, now: datetime) -> list[Exemption]: ...
    def query(self, repository: str | None = None) -> list[StoredExemption]: ...
    def get(self, repository: str, cve: str, digest: str | None) -> StoredExemption | None: ...
    def add(self, exemption: StoredExemption, log: dict[str, Any], now: datetime) -> None: ...
    def revoke(
        self, current: StoredExemption, by: str, reason: str, request_id: str, log: dict[str, Any], now: datetime
    ) -> None: ...
    def record(self, log: dict[str, Any]) -> None: ...
    def logged(self, request_id: str) -> dict[str, Any] | None: ...


class ScanLimitError(WardenError):
    """ECR allows one basic scan per image per 24 hours."""


@dataclass(frozen=True)
class Coverage:
    """Inspector's view of one image: its scan status and when it last scanned it."""

    status: str
    reason: str | None
    last_scanned_at: datetime | None
    scan_mode: str | None


class ScanControl(Protocol):
    def repository_arn(self, repository: str) -> str | None: ...
    def scan_type(self) -> str: ...
    def start_scan(self, repository: str, digest: str) -> str: ...
    def last_scan(self, repository: str, digest: str) -> datetime | None: ...
    def coverage(self, repository_arn: str, digest: str) -> Coverage | None: ...


@dataclass(frozen=True)
class RepositoryPage:
    """One DescribeRepositories page: the names, and ECR's token of the next page (None: the last)."""

    names: list[str]
    next_token: str | None


@dataclass(frozen=True)
class ImageSummary:
    """One image as DescribeImages lists it."""

    digest: str
    tags: tuple[str, ...]
    size: int  # imageSizeInBytes
    pushed_at: datetime | None
    scan_status: str | None  # imageScanStatus.status (COMPLETE, IN_PROGRESS, FAILED, ...), if any


@dataclass(frozen=True)
class LifecyclePreview:
    """What a repository's lifecycle policy would expire now. `available` False: ECR refused or did not complete the
    preview in time (`message` says which); a report says "preview unavailable" and goes on."""

    available: bool
    message: str
    expiring: int
    digests: tuple[str, ...]


class Inventory(Protocol):
    """The reads of `report` (ecr_warden.adapters.inventory): nothing here writes."""

    def repositories(self, page_token: str | None) -> RepositoryPage: ...
    def images(self, repository: str) -> list[ImageSummary] | None: ...
    def records(self, repository: str) -> list[dict[str, Any]]: ...
    def lifecycle_preview(self, repository: str) -> LifecyclePreview: ...


class Continuation(Protocol):
    """Send a request to a new asynchronous invocation of this function (a run continued with its next_token)."""

    def send(self, payload: dict[str, Any]) -> None: ...


@dataclass
class AdminTools:
    """One admin request's world: who asked (and whether that identity is verified), the invocation's id (the same
    on Lambda's retries of it), and the ports."""

    gate: ScanGate
    exemptions: ExemptionStore
    scans: ScanControl
    settings_guard: Callable[[bool], SettingsGuard]  # dry_run -> a guard (audit mode when dry)
    request_id: str
    by: str
    verified: bool = False
    governs: Callable[[str], bool] = field(default=lambda repository: True)
    inventory: Inventory | None = None  # report's reads (None: this deployment's tools offer no report)
    account: str = ""
    region: str = ""
    continuation: Continuation | None = None  # None outside Lambda (the CLI in-process): no self-invocation
    runs: RunTools | None = None  # `run`: None when the deployment has no run queue

    @property
    def policy(self) -> Policy:
        return self.gate.ctx.policy

    def now(self) -> datetime:
        return self.gate.ctx.now()

    @property
    def who(self) -> str:
        """As decisions and records name the requester: an identity only the payload gives is labelled."""
        return self.by if self.verified else f"{self.by} (unverified)"

    def log_entry(
        self, action: str, request: dict[str, Any], reason: str | None, result: dict[str, Any]
    ) -> dict[str, Any]:
        """The admin-log entry of this request: who asked, when, why, what, and what came of it."""
        return {
            "request_id": self.request_id,
            "at": iso(self.now()),
            "action": action,
            "by": self.by,
            "by_verified": self.verified,
            "reason": reason,
            "request": request,
            "result": result,
        }
