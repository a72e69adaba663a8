"""`sweep`: what the event-driven path may have missed, per managed repository, read-only (it reports; it changes
nothing and announces nothing). Run daily by the schedule and on request (`ecr-warden sweep`).

- exempt images whose exemption has expired or was revoked: the next decision, with the current findings and the
  exemptions in force now, would block (or tag) them. `release`/`quarantine` or a rescan settles them; re-deciding
  them here (`apply`) is not offered yet: the answer says so.
- images with a scan result but no decision: DescribeImages says the scan is COMPLETE, the audit table has no
  record of the image (a missed scan event).
- images without a scan result older than the policy's `unscanned_after_seconds`, and no decision.
- settings drift (the settings guard's evaluation; `enforce` fixes it).

Like `report`, one invocation sweeps at most `limit` repositories and answers a `next_token` to continue from."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ecr_warden.actions.enforce import _preview
from ecr_warden.actions.registry import AdminAction, RequestRejected, Who, Why, register_admin
from ecr_warden.actions.report import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    TIME_BUDGET_SECONDS,
    Token,
    applicable,
    current_findings,
    decide,
    has_findings,
    managed,
    records_of,
    walk,
)
from ecr_warden.domain.exemptions import StoredExemption, iso
from ecr_warden.domain.records import ImageRecord, ImageStatus
from ecr_warden.errors import ConfigurationError
from ecr_warden.gate.evaluate import Verdict

if TYPE_CHECKING:
    from ecr_warden.admin.ports import AdminTools
    from ecr_warden.repository_settings.service import SettingsGuard

SCANNED = frozenset({"COMPLETE", "ACTIVE"})  # imageScanStatus of an image with a result (ACTIVE: enhanced)
LISTED = 50  # images listed per kind per invocation (the counts are complete)


class SweepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    next_token: Token | None = None
    limit: int = Field(DEFAULT_LIMIT, strict=True, ge=1, le=MAX_LIMIT)
    apply: bool = Field(False, strict=True)  # re-decide the images an expired exemption no longer covers: not yet
    # continue in a new asynchronous invocation of this function while there is a next_token (the daily schedule;
    # the CLI loops itself and leaves it false)
    follow: bool = Field(False, strict=True)
    reason: Why | None = None
    by: Who


class AdminSweep(SweepRequest):
    """The admin function's `sweep` payload (admin/requests.py)."""

    action: Literal["sweep"]


@register_admin
class Sweep(AdminAction[SweepRequest]):
    name = "sweep"
    input_model = SweepRequest
    admin_model = AdminSweep
    permissions: ClassVar[frozenset[str]] = frozenset(
        {"ecr:DescribeRepositories", "ecr:DescribeImages", "ecr:DescribeImageScanFindings",
         "ecr:GetRegistryScanningConfiguration", "inspector2:ListFindings", "dynamodb:Query", "dynamodb:PutItem",
         "lambda:InvokeFunction"}
    )  # fmt: skip
    logs_itself: ClassVar[bool] = True
    budget: ClassVar[float] = TIME_BUDGET_SECONDS
    clock: ClassVar[Any] = staticmethod(time.monotonic)

    def check(self, request: SweepRequest) -> None:
        if request.apply:
            raise RequestRejected(
                "apply", "not offered yet: sweep reports; settle each image with release, quarantine or rescan"
            )

    def run(self, request: SweepRequest, tools: AdminTools) -> dict[str, Any]:
        inventory = tools.inventory
        if inventory is None:
            raise ConfigurationError("this deployment's admin tools offer no inventory (sweep)")
        guard = tools.settings_guard(True)
        started, found = self.clock(), _Found()
        scanning: list[Any] = []
        enhanced: list[bool] = []
        by_repository: dict[str, list[StoredExemption]] = {}
        for exemption in tools.exemptions.query():  # one Query: which repositories have lapsed exemptions
            by_repository.setdefault(exemption.repository, []).append(exemption)

        def visit(name: str) -> bool:
            if found.repositories and (found.repositories >= request.limit or self.clock() - started > self.budget):
                return False
            if managed(name, tools, guard):
                _sweep(name, tools, guard, found, scanning, enhanced, by_repository.get(name, []))
            return True

        next_token = walk(request.next_token, inventory, visit)
        continued = False
        if request.follow and next_token is not None and tools.continuation is not None:
            following = request.model_dump(mode="json", exclude_none=True)
            # in the registry this sweep is in (organization mode: a member's, named by account and region)
            where = {"account": tools.account, "region": tools.region}
            tools.continuation.send({**following, **where, "action": "sweep", "next_token": next_token})
            continued = True
        result = {
            "swept": found.repositories,
            "applied": False,
            "note": "report only: nothing changed or announced (re-deciding expired exemptions is not offered yet)",
            "counts": {kind: len(rows) for kind, rows in found.rows.items()},
            **{kind: rows[:LISTED] for kind, rows in found.rows.items()},
            "next_token": next_token,
            "continued": continued,  # the rest is swept by a new invocation (follow)
        }
        logged = request.model_dump(mode="json", exclude_none=True)
        compact = {"swept": found.repositories, "counts": result["counts"], "more": next_token is not None,
                   "continued": continued}  # fmt: skip
        tools.exemptions.record(tools.log_entry("sweep", logged, request.reason, compact))
        return result


class _Found:
    def __init__(self) -> None:
        self.repositories = 0
        self.rows: dict[str, list[dict[str, Any]]] = {
            "exemption_expired": [], "undecided": [], "unscanned": [], "drift": [],
        }  # fmt: skip


def _redecided(
    tools: AdminTools, record: ImageRecord, lapsed: list[StoredExemption], enhanced: list[bool]
) -> dict[str, Any] | None:
    """An image decided clean although it has findings, while an exemption that covered it has lapsed (expired or
    revoked): what the next decision would be, on its current findings and the exemptions in force now, if it would
    no longer pass (None: it still passes, or its findings are gone with it)."""
    if not has_findings(record) or not applicable(lapsed, record.digest):
        return None
    findings = current_findings(tools, record.repository, record.digest, enhanced)
    if findings is None:
        return None
    active = [e for e in tools.exemptions.query(record.repository) if e.state(tools.now()) == "active"]
    decision = decide(tools, record, findings, active)
    if decision.verdict is Verdict.PASS:
        return None
    return {"verdict": decision.verdict.value, "reason": "; ".join(decision.reasons)[:500]}


def _sweep(  # noqa: PLR0913 - one repository with the invocation's state
    name: str,
    tools: AdminTools,
    guard: SettingsGuard,
    found: _Found,
    scanning: list[Any],
    enhanced: list[bool],
    exemptions: list[StoredExemption],
) -> None:
    assert tools.inventory is not None
    images = tools.inventory.images(name)
    if images is None:
        return
    found.repositories += 1
    now, policy = tools.now(), tools.policy
    records = {r.digest: r for r in records_of(tools.inventory.records(name))}
    lapsed = [e for e in exemptions if e.state(now) != "active"]
    overdue = now - timedelta(seconds=policy.unscanned_after_seconds)
    for image in images:
        record = records.get(image.digest)
        row = {"repository": name, "digest": image.digest, "tags": list(image.tags)}
        if record is None or record.status is ImageStatus.PENDING:
            if image.scan_status in SCANNED:
                found.rows["undecided"].append({**row, "scan_status": image.scan_status})
            elif image.pushed_at is not None and image.pushed_at <= overdue:
                found.rows["unscanned"].append({**row, "pushed_at": iso(image.pushed_at),
                                                "scan_status": image.scan_status})  # fmt: skip
            continue
        if lapsed:
            verdict = _redecided(tools, record, lapsed, enhanced)
            if verdict is not None:
                found.rows["exemption_expired"].append({**row, **verdict})
    drift = _drift(guard, name, scanning)
    if drift is not None:
        found.rows["drift"].append(drift)


def _drift(guard: SettingsGuard, name: str, scanning: list[Any]) -> dict[str, Any] | None:
    if guard.settings.profile_for(name) is None:
        return None
    if not scanning:
        scanning.append(guard.ports.registry.registry_scanning())
    preview = _preview(guard, name, scanning[0])
    return preview if preview and (preview["changes"] or preview["reports"]) else None
