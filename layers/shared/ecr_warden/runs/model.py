"""A run's messages and its progress, as stored and as reported."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ecr_warden.contracts.common import RepositoryName
from ecr_warden.domain.images import Scope

Job = Literal["reconcile", "sweep", "report"]
JOBS: tuple[Job, ...] = ("reconcile", "sweep", "report")
# repositories per batch step, by job: well inside one invocation (60 s). A report waits up to 5 s per repository
# for its lifecycle preview, so its batches are smaller. Fixed per job: a page's plan splits the same way each time.
BATCHES: dict[Job, int] = {"reconcile": 25, "sweep": 25, "report": 5}
BATCH = max(BATCHES.values())
PAGE = 1000  # repositories per list step (DescribeRepositories' largest page)
PAGE_TOKEN = 65_536  # characters of an ECR page token a step carries
FAILED_SHOWN = 100  # unreachable registries a status lists with their reason
MAX_SCOPES = 5000  # registries one run may cover (1,000 accounts x 5 regions)
RUN_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
ACCOUNT = r"^\d{12}$"
REGION = r"^[a-z]{2}(-[a-z]+)+-\d$"


class RunStep(BaseModel):
    """One message on the run queue: list a page of a registry's repositories, or work on a batch of them."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    kind: Literal["list", "batch"]
    run_id: str = Field(pattern=RUN_ID)
    job: Job
    account: str = Field(pattern=ACCOUNT)
    region: str = Field(pattern=REGION)
    page: int = Field(0, ge=0, le=100_000)  # list: the page to list; batch: the page it was listed from
    page_token: str | None = Field(None, min_length=1, max_length=PAGE_TOKEN)  # list: ECR's token of that page
    index: int = Field(0, ge=0, le=PAGE // min(BATCHES.values()))  # batch: its number within the page
    repositories: list[RepositoryName] = Field(default_factory=list, max_length=BATCH)

    @property
    def scope(self) -> Scope:
        return Scope(self.account, self.region)

    @property
    def group(self) -> str:
        """The FIFO message group: one registry's steps run one at a time, in order."""
        return f"{self.account}#{self.region}"

    @property
    def key(self) -> str:
        """This step's progress marker: counted once, however often SQS delivers it."""
        where = f"{self.account}#{self.region}#{self.page}"
        return f"page#{where}" if self.kind == "list" else f"batch#{where}#{self.index}"

    @property
    def plan_key(self) -> str:
        """A list step's plan: the names it listed and ECR's next token, stored before anything is sent."""
        return f"plan#{self.account}#{self.region}#{self.page}"

    def batches(self, names: Sequence[str]) -> list[RunStep]:
        """A list step's batch steps for the names it listed, split by the job's batch size."""
        size = BATCHES[self.job]
        return [
            self.following(kind="batch", page_token=None, index=n, repositories=list(names[start : start + size]))
            for n, start in enumerate(range(0, len(names), size))
        ]

    def following(self, **update: Any) -> RunStep:
        """This step with `update`, validated (model_copy would not check the new values)."""
        return RunStep.model_validate({**self.model_dump(), **update})


@dataclass(frozen=True)
class PagePlan:
    """What a list step sends, fixed once: a retried step sends the same steps, whatever ECR says meanwhile."""

    names: tuple[str, ...]
    next_token: str | None


@dataclass(frozen=True)
class BatchResult:
    """What a batch found: counts by kind (summed over the run) and the rows behind them (kept with the batch)."""

    counts: dict[str, int]
    rows: list[dict[str, Any]] = field(default_factory=list)
    repositories: int = 0  # repositories worked on (managed ones; the rest are skipped)


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    job: Job
    by: str
    reason: str | None
    started_at: str
    scopes_total: int
    scopes_digest: str  # of the "<account>#<region>" list, in order: a retried start is recognised by it


def scopes_digest(scopes: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(scopes).encode()).hexdigest()


@dataclass(frozen=True)
class RunStatus:
    """A run as its counters say: every step is counted once, when it finished."""

    summary: RunSummary
    counters: dict[str, int]
    counts: dict[str, int]
    # "<account>#<region>" -> why its registry could not be listed (the first FAILED_SHOWN; the count is complete)
    failed_scopes: dict[str, str]
    updated_at: str | None = None  # the last count (ISO UTC): a run that stays "running" long after it is stalled
    aborted: str | None = None  # why the start could not queue its steps

    @property
    def failed(self) -> int:
        return max(self.counters.get("scopes_failed", 0), len(self.failed_scopes))

    @property
    def complete(self) -> bool:
        """Every registry listed (or found unreachable) and every batch queued counted done."""
        c = self.counters
        listed = c.get("scopes_listed", 0) + self.failed
        return listed >= self.summary.scopes_total and c.get("batches_done", 0) >= c.get("batches_queued", 0)

    @property
    def state(self) -> Literal["running", "done", "done_with_unreachable", "aborted"]:
        if self.aborted is not None:
            return "aborted"
        if not self.complete:
            return "running"
        return "done_with_unreachable" if self.failed else "done"

    @property
    def done(self) -> bool:
        return self.state == "done"

    def as_dict(self) -> dict[str, Any]:
        c = self.counters
        total = self.summary.scopes_total
        queued, done = c.get("batches_queued", 0), c.get("batches_done", 0)
        return {
            "run_id": self.summary.run_id,
            "job": self.summary.job,
            "by": self.summary.by,
            "reason": self.summary.reason,
            "started_at": self.summary.started_at,
            "updated_at": self.updated_at,
            "state": self.state,
            "aborted": self.aborted,
            "registries": {
                "total": total,
                "listed": c.get("scopes_listed", 0),
                "failed": self.failed,
                "pending": max(0, total - c.get("scopes_listed", 0) - self.failed),
            },
            "batches": {"queued": queued, "done": done, "pending": max(0, queued - done)},
            "repositories": {
                "listed": c.get("repositories_listed", 0),
                "done": c.get("repositories_done", 0),
                "worked_on": c.get("repositories_worked", 0),
            },
            "counts": dict(sorted(self.counts.items())),
            "failed_registries": dict(sorted(self.failed_scopes.items())),
        }
