"""What the run engine needs from AWS, as protocols (ecr_warden.adapters.runs implements them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ecr_warden.admin.ports import RepositoryPage
from ecr_warden.domain.images import Scope
from ecr_warden.runs.model import BatchResult, RunStatus, RunStep, RunSummary


class RunQueue(Protocol):
    def send(self, steps: Sequence[RunStep]) -> None: ...


class RunProgress(Protocol):
    def create(self, summary: RunSummary) -> bool: ...  # False: a run with this id exists already
    def counted(self, run_id: str, key: str) -> bool: ...  # the step was counted (finished) before
    def listed(self, step: RunStep, batches: int, repositories: int, last: bool) -> bool: ...
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
