"""What the run engine needs from AWS, as protocols (ecr_warden.adapters.runs implements them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ecr_warden.admin.ports import RepositoryPage
from ecr_warden.domain.images import Scope
from ecr_warden.runs.model import BatchResult, Job, PagePlan, RunStatus, RunStep, RunSummary


class RunQueue(Protocol):
    def send(self, steps: Sequence[RunStep]) -> None: ...


class RunProgress(Protocol):
    def create(self, summary: RunSummary) -> bool: ...  # False: a run with this id exists already
    def abort(self, run_id: str, why: str | None) -> None: ...  # why None: a retried start queued every step
    # the run's job (None: no such run) and whether the step was counted (finished) before
    def lookup(self, run_id: str, key: str) -> tuple[Job | None, bool]: ...
    # the step's page as first listed (stored, its batches counted queued), or `plan` if it is the first
    def plan(self, step: RunStep, plan: PagePlan) -> PagePlan: ...
    def stored_plan(self, step: RunStep) -> PagePlan | None: ...
    def listed(self, step: RunStep, last: bool) -> bool: ...
    def failed(self, step: RunStep, why: str) -> bool: ...
    def finished(self, step: RunStep, result: BatchResult) -> bool: ...
    def status(self, run_id: str) -> RunStatus | None: ...
    def rows(self, run_id: str, limit: int) -> list[dict[str, Any]]: ...


class AccountDirectory(Protocol):
    def accounts(self) -> list[str]: ...  # the organization's ACTIVE accounts


class RepositoryLister(Protocol):
    def repositories(self, page_token: str | None) -> RepositoryPage: ...


@dataclass
class RunPorts:
    queue: RunQueue
    progress: RunProgress
    lister: Callable[[Scope], RepositoryLister]  # a registry's repositories, read in that account and region
    directory: AccountDirectory | None = None  # None: a single-account deployment
    # why an error means the registry can't be read at all (no member role there, region not enabled), else None
    unreachable: Callable[[Exception], str | None] = lambda error: None
