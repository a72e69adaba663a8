"""What one batch step does in its registry, per job, with the admin tools built for that account and region:
the same code as `ecr-warden sweep`, `report` and the settings guard's reconcile, one batch of repositories at a
time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from ecr_warden.actions.report import DEFAULT_PRICE, ReportRequest, _Reading, _repository, managed, summarize
from ecr_warden.actions.sweep import _Found, _sweep
from ecr_warden.adapters.aws import error_code
from ecr_warden.domain.exemptions import StoredExemption
from ecr_warden.runs.model import BatchResult, RunStep

if TYPE_CHECKING:
    from ecr_warden.admin.ports import AdminTools

ROWS_PER_KIND = 200  # rows kept per kind and batch (the counts are complete)
# AWS errors about one repository that retrying can't change: that repository is reported, the batch goes on.
# Anything else (throttling, timeouts) fails the step, and SQS retries it.
PER_REPOSITORY = frozenset({"AccessDenied", "AccessDeniedException", "RepositoryNotFoundException"})
T = TypeVar("T")


def _isolated(name: str, step: RunStep, errors: list[dict[str, Any]], each: Callable[[], T]) -> T | None:
    """`each()` for one repository; None (and an error row) if AWS refused it for good."""
    try:
        return each()
    except Exception as error:
        code = error_code(error)
        if code not in PER_REPOSITORY:
            raise
        message = str((getattr(error, "response", None) or {}).get("Error", {}).get("Message", ""))[:300]
        errors.append({"kind": "error", "account": step.account, "region": step.region, "repository": name,
                       "error": f"{code}: {message}"})  # fmt: skip
        return None


def _with_errors(result: BatchResult, errors: list[dict[str, Any]]) -> BatchResult:
    if not errors:
        return result
    counts = {**result.counts, "errors": result.counts.get("errors", 0) + len(errors)}
    return BatchResult(counts, [*result.rows, *errors[:ROWS_PER_KIND]], result.repositories)


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
    if step.job == "sweep":
        return _sweep_batch(step, tools, guard, names, by_repository)
    return _report_batch(step, tools, guard, names, by_repository)


def _sweep_batch(step: RunStep, tools: AdminTools, guard: Any, names: list[str],
                 by_repository: dict[str, list[StoredExemption]]) -> BatchResult:  # fmt: skip
    found = _Found()
    errors: list[dict[str, Any]] = []
    scanning: list[Any] = []
    enhanced: list[bool] = []
    for name in names:
        before = found.repositories, {kind: len(kinds) for kind, kinds in found.rows.items()}

        def one(name: str = name) -> bool:
            _sweep(name, tools, guard, found, scanning, enhanced, by_repository.get(name, []))
            return True

        if _isolated(name, step, errors, one) is None:  # what it found before it failed is dropped
            found.repositories = before[0]
            for kind, kept in before[1].items():
                del found.rows[kind][kept:]
    where = {"account": step.account, "region": step.region}
    rows = [{"kind": kind, **where, **row} for kind, kinds in found.rows.items() for row in kinds[:ROWS_PER_KIND]]
    counts = {kind: len(kinds) for kind, kinds in found.rows.items() if kinds}
    return _with_errors(BatchResult(counts, rows, found.repositories), errors)


def _report_batch(step: RunStep, tools: AdminTools, guard: Any, names: list[str],
                  by_repository: dict[str, list[StoredExemption]]) -> BatchResult:  # fmt: skip
    if tools.inventory is None:
        raise RuntimeError("report needs the inventory")
    reading = _Reading(tools, guard, tools.inventory, ReportRequest(by=tools.by), by_repository)
    errors: list[dict[str, Any]] = []
    sections = []
    for name in names:
        section = _isolated(name, step, errors, partial(_repository, name, reading))
        if section is not None:
            sections.append(section)
    summary = summarize(sections, DEFAULT_PRICE)
    counts = {k: v for k, v in summary.items() if isinstance(v, int) and not isinstance(v, bool) and v}
    counts.update({f"status_{k}": v for k, v in summary["by_status"].items()})
    where = {"account": step.account, "region": step.region}
    return _with_errors(BatchResult(counts, [{**where, **section} for section in sections], len(sections)), errors)


def _prefetch(guard: Any, names: list[str]) -> None:
    prefetch = getattr(guard.ports.registry, "prefetch", None)  # the ECR adapter's; test fakes have none
    if prefetch is not None and names:
        try:
            prefetch(names)
        except Exception as error:
            if error_code(error) not in PER_REPOSITORY:
                raise  # refused for one of them: each is then described on its own, and reported alone


def _reconcile(step: RunStep, tools: AdminTools) -> BatchResult:
    guard = tools.settings_guard(False)
    _prefetch(guard, list(step.repositories))
    errors: list[dict[str, Any]] = []
    outcomes = []
    for name in step.repositories:
        outcomes.extend(_isolated(name, step, errors, partial(guard.reconcile, step.run_id, [name])) or [])
    counts = Counter(outcome.result for outcome in outcomes)
    rows = [
        {"account": step.account, "region": step.region, "repository": o.repository, "result": o.result,
         "reason": o.reason, "changes": list(o.changes)}
        for o in outcomes
        if o.result != "compliant"
    ][: ROWS_PER_KIND * 4]  # fmt: skip
    return _with_errors(BatchResult(dict(counts), rows, len(outcomes)), errors)
