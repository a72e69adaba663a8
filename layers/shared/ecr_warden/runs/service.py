"""The run engine: start a run over registries, and carry out one step of it. Every step is idempotent: its
progress marker is written together with the counters it adds (one transaction), so a redelivered step is seen
and skipped, and the counters say exactly what was done."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from ecr_warden.domain.images import Scope
from ecr_warden.runs.model import BATCH, MAX_SCOPES, BatchResult, Job, RunStep, RunSummary
from ecr_warden.runs.ports import RunPorts

Work = Callable[[RunStep], BatchResult]


class RunRefused(ValueError):
    """A run that can't start as asked (`field` names the request field at fault); nothing was queued."""

    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


def scopes_of(accounts: Sequence[str], regions: Sequence[str]) -> list[Scope]:
    found = [Scope(account, region) for account in dict.fromkeys(accounts) for region in dict.fromkeys(regions)]
    if not found:
        raise RunRefused("accounts", "no registry to run over (no account or no region)")
    if len(found) > MAX_SCOPES:
        raise RunRefused("accounts", f"{len(found)} registries: at most {MAX_SCOPES} in one run")
    return found


class RunEngine:
    def __init__(self, ports: RunPorts, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.ports, self.now = ports, now

    def start(self, run_id: str, job: Job, scopes: Sequence[Scope], by: str, reason: str | None) -> dict[str, Any]:
        """Record the run, then queue one list step per registry. Starting the same run id again (a retried
        request) queues nothing new: SQS deduplicates the steps and the progress counts each once."""
        started = self.now().astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        summary = RunSummary(run_id, job, by, reason, started, tuple(f"{s.account}#{s.region}" for s in scopes))
        created = self.ports.progress.create(summary)
        if not created:
            existing = self.ports.progress.status(run_id)
            if existing is None or existing.summary.job != job or existing.summary.scopes != summary.scopes:
                raise RunRefused("run_id", f"{run_id} names another run already: choose a new id")
        steps = [RunStep(kind="list", run_id=run_id, job=job, account=s.account, region=s.region) for s in scopes]
        self.ports.queue.send(steps)
        return {"run_id": run_id, "job": job, "registries": len(scopes), "queued": len(steps), "new": created}

    def step(self, step: RunStep, work: Work) -> str:
        if self.ports.progress.counted(step.run_id, step.key):
            return "already done"
        if step.kind == "list":
            return self._list(step)
        result = work(step)
        self.ports.progress.finished(step, result)
        return f"{result.repositories} of {len(step.repositories)} repositories worked on"

    def _list(self, step: RunStep) -> str:
        """One page of the registry: its batches, then the next page's list step (the group keeps that order)."""
        try:
            page = self.ports.lister(step.scope).repositories(step.page_token)
        except Exception as error:
            why = self.ports.unreachable(error)
            if why is None:
                raise  # throttling, a timeout: SQS retries the step
            self.ports.progress.failed(step, why)
            return f"registry unreachable: {why}"
        batches = [
            step.model_copy(update={"kind": "batch", "page_token": None, "index": n,
                                    "repositories": page.names[start : start + BATCH]})
            for n, start in enumerate(range(0, len(page.names), BATCH))
        ]  # fmt: skip
        follow = []
        if page.next_token:
            follow = [step.model_copy(update={"page": step.page + 1, "page_token": page.next_token})]
        self.ports.queue.send([*batches, *follow])
        self.ports.progress.listed(step, len(batches), len(page.names), last=not follow)
        return f"{len(page.names)} repositories in {len(batches)} batches" + (", more to list" if follow else "")


class RunTools:
    """What the `run` admin action starts runs with: the engine, and where this deployment may run."""

    def __init__(self, engine: RunEngine, regions: Sequence[str], organization: bool) -> None:
        self.engine, self.regions, self.organization = engine, tuple(regions), organization
