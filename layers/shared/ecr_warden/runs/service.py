"""The run engine: start a run over registries, and carry out one step of it. Every step is idempotent: its
progress marker is written together with the counters it adds (one transaction), so a redelivered step is seen
and skipped, and the counters say exactly what was done."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from ecr_warden.domain.images import Scope
from ecr_warden.errors import PermanentError
from ecr_warden.runs.model import MAX_SCOPES, BatchResult, Job, PagePlan, RunStep, RunSummary, scopes_digest
from ecr_warden.runs.ports import RunPorts

Work = Callable[[RunStep], BatchResult]
EXPIRED_PAGE = "ECR no longer accepts the page token (expired): start a new run"
UNREACHABLE = "registry unreachable"  # how a step's result starts when its registry was recorded unreachable


class StepRejected(PermanentError):
    """A step of no run we know (its summary is gone or never was), or of another job than its run's."""


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
        digest = scopes_digest([f"{s.account}#{s.region}" for s in scopes])
        summary = RunSummary(run_id, job, by, reason, started, len(scopes), digest)
        progress = self.ports.progress
        created = progress.create(summary)
        existing = None
        if not created:
            existing = progress.status(run_id)
            if existing is None or existing.summary.job != job or existing.summary.scopes_digest != digest:
                raise RunRefused("run_id", f"{run_id} names another run already: choose a new id")
        steps = [RunStep(kind="list", run_id=run_id, job=job, account=s.account, region=s.region) for s in scopes]
        try:
            self.ports.queue.send(steps)
        except Exception as error:
            # some registries' first steps may be missing: the run could never finish, so it says it was aborted
            progress.abort(run_id, f"its steps could not all be queued: {str(error)[:300] or type(error).__name__}")
            raise
        if existing is not None and existing.aborted is not None:
            progress.abort(run_id, None)  # a retried start queued them all: the run goes on
        return {"run_id": run_id, "job": job, "registries": len(scopes), "queued": len(steps), "new": created}

    def step(self, step: RunStep, work: Work) -> str:
        job, counted = self.ports.progress.lookup(step.run_id, step.key)
        if job is None:
            raise StepRejected(f"no run {step.run_id} (expired, or never started): step {step.key} not worked on")
        if job != step.job:
            raise StepRejected(f"run {step.run_id} is a {job} run, not {step.job}: step {step.key} not worked on")
        if counted:
            return "already done"
        if step.kind == "list":
            return self._list(step)
        result = work(step)
        self.ports.progress.finished(step, result)
        return f"{result.repositories} of {len(step.repositories)} repositories worked on"

    def _list(self, step: RunStep) -> str:
        """One page of the registry: its batches, then the next page's list step (the group keeps that order). The
        page is listed once: its plan is stored (and its batches counted queued) before anything is sent, and a
        retried step sends exactly that plan again, so its batches are the ones counted, whatever ECR says now."""
        plan = self.ports.progress.stored_plan(step)
        if plan is None:
            try:
                page = self.ports.lister(step.scope).repositories(step.page_token)
            except Exception as error:
                why = self.ports.unreachable(error)
                if why is None and step.page_token and _code(error) == "InvalidParameterException":
                    why = EXPIRED_PAGE  # e.g. a step redriven from the dead-letter queue days later
                if why is None:
                    raise  # throttling, a timeout: SQS retries the step
                if not self.ports.progress.failed(step, why):
                    return "already done"
                return f"{UNREACHABLE}: {why}"
            plan = self.ports.progress.plan(step, PagePlan(tuple(page.names), page.next_token))
        batches = step.batches(plan.names)
        follow = [step.following(page=step.page + 1, page_token=plan.next_token)] if plan.next_token else []
        self.ports.queue.send([*batches, *follow])
        self.ports.progress.listed(step, last=not follow)
        return f"{len(plan.names)} repositories in {len(batches)} batches" + (", more to list" if follow else "")


def _code(error: Exception) -> str | None:
    """An AWS error's code (botocore's ClientError), without depending on botocore here."""
    code = ((getattr(error, "response", None) or {}).get("Error") or {}).get("Code")
    return str(code) if code else None


class RunTools:
    """What the `run` admin action starts runs with: the engine, and where this deployment may run."""

    def __init__(self, engine: RunEngine, regions: Sequence[str], organization: bool) -> None:
        self.engine, self.regions, self.organization = engine, tuple(regions), organization
