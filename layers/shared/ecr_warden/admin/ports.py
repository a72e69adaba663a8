"""What the admin actions work with: the gate (release, quarantine), ecr-warden's exemption store and admin log,
ECR's scanner and Inspector's coverage (rescan), and the settings guard (enforce). Adapters implement the
protocols (ecr_warden.adapters.exemptions, ecr_warden.adapters.scans); tests pass in-memory fakes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from ecr_warden.domain.exemptions import StoredExemption, iso
from ecr_warden.errors import WardenError
from ecr_warden.policy.model import Exemption, Policy

if TYPE_CHECKING:
    from ecr_warden.gate.dispatch import ScanGate
    from ecr_warden.repository_settings.service import SettingsGuard
    from ecr_warden.runs.service import RunTools


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
    on Lambda's retries of it), the policy and the ports. The gate is built when an action first asks for it: `exempt
    list` or `report` never load the gate's machinery (the admin function's cold start)."""

    policy: Policy
    now: Callable[[], datetime]
    make_gate: Callable[[], ScanGate]
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
    make_runs: Callable[[], RunTools | None] = field(default=lambda: None)  # None: the deployment has no run queue

    @cached_property
    def gate(self) -> ScanGate:
        return self.make_gate()

    @cached_property
    def runs(self) -> RunTools | None:
        return self.make_runs()

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
