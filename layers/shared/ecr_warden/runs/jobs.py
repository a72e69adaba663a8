"""What one batch step does in its registry, per job, with the admin tools built for that account and region:
the same code as `ecr-warden sweep`, `report` and the settings guard's reconcile, one batch of repositories at a
time."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from ecr_warden.actions.report import DEFAULT_PRICE, ReportRequest, _Reading, _repository, managed, summarize
from ecr_warden.actions.sweep import _Found, _sweep
from ecr_warden.admin.ports import StoredExemption
from ecr_warden.runs.model import BatchResult, RunStep

if TYPE_CHECKING:
    from ecr_warden.admin.ports import AdminTools

ROWS_PER_KIND = 200  # rows kept per kind and batch (the counts are complete)


def work(step: RunStep, tools: AdminTools) -> BatchResult:
    if step.job == "reconcile":
        return _reconcile(step, tools)
    guard = tools.settings_guard(True)  # sweep and report read: audit mode, evaluation only
    names = [name for name in step.repositories if managed(name, tools, guard)]
    _prefetch(guard, names)
    by_repository: dict[str, list[StoredExemption]] = {}
    if names:
        for exemption in tools.exemptions.query():  # one Query for the batch: the registry's exemptions
            by_repository.setdefault(exemption.repository, []).append(exemption)
    where = {"account": step.account, "region": step.region}
    if step.job == "sweep":
        found = _Found()
        scanning: list[Any] = []
        enhanced: list[bool] = []
        for name in names:
            _sweep(name, tools, guard, found, scanning, enhanced, by_repository.get(name, []))
        rows = [{"kind": kind, **where, **row} for kind, kinds in found.rows.items() for row in kinds[:ROWS_PER_KIND]]
        counts = {kind: len(kinds) for kind, kinds in found.rows.items() if kinds}
        return BatchResult(counts, rows, found.repositories)
    if tools.inventory is None:
        raise RuntimeError("report needs the inventory")
    request = ReportRequest(by=tools.by)
    reading = _Reading(tools, guard, tools.inventory, request, by_repository)
    sections = [s for s in (_repository(name, reading) for name in names) if s is not None]
    summary = summarize(sections, DEFAULT_PRICE)
    counts = {k: v for k, v in summary.items() if isinstance(v, int) and not isinstance(v, bool) and v}
    counts.update({f"status_{k}": v for k, v in summary["by_status"].items()})
    return BatchResult(counts, [{**where, **section} for section in sections], len(sections))


def _prefetch(guard: Any, names: list[str]) -> None:
    prefetch = getattr(guard.ports.registry, "prefetch", None)  # the ECR adapter's; test fakes have none
    if prefetch is not None and names:
        prefetch(names)


def _reconcile(step: RunStep, tools: AdminTools) -> BatchResult:
    guard = tools.settings_guard(False)
    _prefetch(guard, list(step.repositories))
    outcomes = guard.reconcile(step.run_id, list(step.repositories))
    counts = Counter(outcome.result for outcome in outcomes)
    rows = [
        {"account": step.account, "region": step.region, "repository": o.repository, "result": o.result,
         "reason": o.reason, "changes": list(o.changes)}
        for o in outcomes
        if o.result != "compliant"
    ][: ROWS_PER_KIND * 4]  # fmt: skip
    return BatchResult(dict(counts), rows, len(outcomes))
