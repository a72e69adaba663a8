"""In-memory fakes of the admin function's ports (ecr_warden.admin.ports) on top of tests/fakes.py, with the
semantics of their adapters: FakeExemptionStore is DynamoExemptions (the add's and the revoke's conditions, each
written in one transaction with its admin-log entry), FakeScans is EcrScans (ECR's one basic scan per image per 24
hours). `Admin` wires an admin request's tools to the gate's fakes and the settings guard's (World).

Every port method counts its calls and can be made to fail (`fail("add")`); `lose("add")` makes the next call
commit and then fail, as a write whose answer was lost."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from ecr_warden.admin.entry import process
from ecr_warden.admin.ports import AdminTools, Coverage, ImageSummary, LifecyclePreview, RepositoryPage, ScanLimitError
from ecr_warden.domain.exemptions import ExemptionConflict, StoredExemption
from ecr_warden.policy.model import Exemption, Policy
from ecr_warden.repository_settings.service import SettingsGuard
from ecr_warden.settings import AdminSettings
from tests.fakes import ACCOUNT, REPOSITORY, FakeAwsError, Fakes, _Port
from tests.unit.test_settings_guard_support import World

SETTINGS = AdminSettings(audit_table_name="audit", decision_bus_name="bus", reconcile_queue_url="https://q")


class FakeExemptionStore(_Port):
    """The exemption partition and the admin log of the audit table."""

    WRITES = ("add", "revoke", "record")

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[str, StoredExemption] = {}
        self.log: dict[str, dict[str, Any]] = {}  # by request id (a retry writes the same item again)
        self._lost: set[str] = set()

    def lose(self, method: str) -> None:
        self._lost.add(method)

    def _committed(self, method: str) -> None:
        if method in self._lost:
            self._lost.discard(method)
            raise FakeAwsError("RequestTimeout", f"{method}: the answer was lost (injected)")

    @property
    def writes(self) -> int:
        return sum(self.calls[m] for m in self.WRITES)

    def active(self, repository: str, now: datetime) -> list[Exemption]:
        self._enter("active")
        return [e.as_policy_exemption() for e in self._of(repository) if e.state(now) == "active"]

    def query(self, repository: str | None = None) -> list[StoredExemption]:
        self._enter("query")
        return self._of(repository)

    def get(self, repository: str, cve: str, digest: str | None) -> StoredExemption | None:
        self._enter("get")
        return self.items.get(f"{repository}#{cve}#{digest or '*'}")

    def add(self, exemption: StoredExemption, log: dict[str, Any], now: datetime) -> None:
        self._enter("add")
        current = self.items.get(exemption.sort_key)
        if current is not None and current.revoked_at is None and current.expires > now:
            raise ExemptionConflict(current)
        self.items[exemption.sort_key] = exemption
        self.log[str(log["request_id"])] = log
        self._committed("add")

    def revoke(
        self, current: StoredExemption, by: str, reason: str, request_id: str, log: dict[str, Any], now: datetime
    ) -> None:
        self._enter("revoke")
        stored = self.items.get(current.sort_key)
        if stored is None or stored.revoked_at is not None or stored.request_id != current.request_id:
            raise ExemptionConflict(stored)
        self.items[current.sort_key] = replace(
            stored, revoked_at=now, revoked_by=by, revoke_reason=reason, revoke_request_id=request_id
        )
        self.log[str(log["request_id"])] = log
        self._committed("revoke")

    def record(self, log: dict[str, Any]) -> None:
        self._enter("record")
        self.log[str(log["request_id"])] = log
        self._committed("record")

    def logged(self, request_id: str) -> dict[str, Any] | None:
        self._enter("logged")
        return self.log.get(request_id)

    def _of(self, repository: str | None) -> list[StoredExemption]:
        return [e for e in self.items.values() if repository is None or e.repository == repository]


class FakeScans(_Port):
    """ECR's scanner and Inspector's coverage, over the gate's FakeRegistry's repositories."""

    WRITES = ("start_scan",)

    def __init__(self, fakes: Fakes) -> None:
        super().__init__()
        self.fakes = fakes
        self.type: Literal["BASIC", "ENHANCED"] = "BASIC"
        self.scanned: dict[tuple[str, str], datetime] = {}  # basic scans started: when
        self.coverages: dict[tuple[str, str], Coverage] = {}
        self.started = 0

    @property
    def writes(self) -> int:
        """Scans started (one ECR refused at its daily limit changed nothing)."""
        return self.started

    def repository_arn(self, repository: str) -> str | None:
        self._enter("repository_arn")
        known = repository in self.fakes.registry.repositories
        return f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{repository}" if known else None

    def scan_type(self) -> str:
        self._enter("scan_type")
        return self.type

    def start_scan(self, repository: str, digest: str) -> str:
        self._enter("start_scan")
        last = self.scanned.get((repository, digest))
        now = self.fakes.clock()
        if last is not None and now - last < timedelta(hours=24):
            raise ScanLimitError("LimitExceededException: the scan quota per image has been exceeded")
        self.scanned[(repository, digest)] = now
        self.started += 1
        return "IN_PROGRESS"

    def last_scan(self, repository: str, digest: str) -> datetime | None:
        self._enter("last_scan")
        return self.scanned.get((repository, digest))

    def coverage(self, repository_arn: str, digest: str) -> Coverage | None:
        self._enter("coverage")
        return self.coverages.get((repository_arn.rsplit("repository/", 1)[-1], digest))


class FakeInventory(_Port):
    """report's reads (EcrInventory) over the gate's FakeRegistry and FakeAuditStore: repositories in pages of
    `page_size` (ECR's token: the index of the next name), images with a size per manifest byte, the audit items of
    a repository's partition, and lifecycle previews as set (default: no lifecycle policy)."""

    def __init__(self, fakes: Fakes) -> None:
        super().__init__()
        self.fakes = fakes
        self.page_size = 1000
        self.previews: dict[str, LifecyclePreview] = {}
        self.scan_states: dict[str, tuple[str | None, datetime | None]] = {}  # digest -> scan status, pushed at

    def repositories(self, page_token: str | None) -> RepositoryPage:
        self._enter("repositories")
        names = sorted(self.fakes.registry.repositories)
        if page_token is not None and not page_token.isdigit():
            error = FakeAwsError("InvalidParameterException", "Invalid parameter at 'nextToken'")
            error.response = {"Error": {"Code": error.code}}  # as botocore's ClientError carries it
            raise error
        start = int(page_token or 0)
        end = start + self.page_size
        return RepositoryPage(names[start:end], str(end) if end < len(names) else None)

    def images(self, repository: str) -> list[ImageSummary] | None:
        self._enter("images")
        repo = self.fakes.registry.repositories.get(repository)
        if repo is None:
            return None
        return [
            ImageSummary(digest, tuple(repo.tags_of(digest)), len(image.body) * 1_000_000,
                         self.scan_states.get(digest, ("COMPLETE", None))[1],
                         self.scan_states.get(digest, ("COMPLETE", None))[0])
            for digest, image in repo.images.items()
        ]  # fmt: skip

    def records(self, repository: str) -> list[dict[str, Any]]:
        self._enter("records")
        return [dict(item) for (repo, _), item in self.fakes.store.items.items() if repo == repository]

    def lifecycle_preview(self, repository: str) -> LifecyclePreview:
        self._enter("lifecycle_preview")
        return self.previews.get(repository, LifecyclePreview(True, "no lifecycle policy", 0, ()))


@dataclass
class Admin:
    """The admin function on fakes: `invoke(payload)` is one Lambda invocation (a request id of its own unless
    given: Lambda's retries of an invocation keep its id)."""

    fakes: Fakes = field(default_factory=Fakes)
    exemptions: FakeExemptionStore = field(default_factory=FakeExemptionStore)
    world: World = field(default_factory=World)
    scans: FakeScans = field(init=False)
    inventory: FakeInventory = field(init=False)
    policy: Policy | None = None
    mode: Literal["enforce", "audit"] = "enforce"
    governed: str = "*"
    invocations: int = 0

    def __post_init__(self) -> None:
        self.scans = FakeScans(self.fakes)
        self.inventory = FakeInventory(self.fakes)

    def gate(self, policy: Policy | None = None) -> Any:
        """The scan gate on the same fakes, reading the same exemption store."""
        gate = self.fakes.gate(policy or self.policy, self.mode)
        gate.ports.exemptions = self.exemptions
        return gate

    def tools(self, _settings: AdminSettings, _account: str, request_id: str, by: str, verified: bool) -> AdminTools:
        def guard(dry_run: bool) -> SettingsGuard:
            return self.world.guard(self.policy, "audit" if dry_run else self.mode)

        import fnmatch

        gate = self.gate()
        return AdminTools(
            policy=gate.ctx.policy,
            now=gate.ctx.now,
            make_gate=lambda: gate,
            exemptions=self.exemptions,
            scans=self.scans,
            settings_guard=guard,
            request_id=request_id,
            by=by,
            verified=verified,
            governs=lambda repository: fnmatch.fnmatchcase(repository, self.governed),
            inventory=self.inventory,
            account=ACCOUNT,
            region="us-east-1",
        )

    def invoke(self, payload: Any, request_id: str | None = None, verified: str | None = None) -> dict[str, Any]:
        self.invocations += 1
        request_id = request_id or f"req-{self.invocations}"
        return process(payload, SETTINGS, ACCOUNT, request_id, verified, tools_factory=self.tools)

    @property
    def writes(self) -> int:
        """Every AWS write any port made: ECR, the audit table, the bus, the scanner, the settings guard."""
        fakes = self.fakes
        return (
            fakes.registry.writes
            + fakes.store.calls["save"] + fakes.store.calls["record_pass"] + fakes.store.calls["link_child"]
            + fakes.store.calls["confirm_tag_reuse"] + fakes.announcer.calls["publish"] + fakes.checks.calls["schedule"]
            + self.exemptions.writes + self.scans.writes + self.world.registry.writes()
            + sum(self.world.audit.calls[m] for m in ("claim", "fail", "finish", "remember_report"))
            + self.world.announcer.calls["publish"] + self.world.fan_out.calls["send"]
        )  # fmt: skip


__all__ = ["REPOSITORY", "Admin", "FakeExemptionStore", "FakeScans"]
