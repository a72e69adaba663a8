"""A run's messages and its progress, as stored and as reported."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ecr_warden.contracts.common import RepositoryName
from ecr_warden.domain.images import Scope

Job = Literal["reconcile", "sweep", "report"]
JOBS: tuple[Job, ...] = ("reconcile", "sweep", "report")
BATCH = 25  # repositories per batch step: a few seconds of ECR calls, well inside one invocation
PAGE = 1000  # repositories per list step (DescribeRepositories' largest page)
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
    page_token: str | None = Field(None, min_length=1, max_length=8192)  # list: ECR's token of that page
    index: int = Field(0, ge=0, le=PAGE // BATCH)  # batch: its number within the page
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
    scopes: tuple[str, ...]  # "<account>#<region>"


@dataclass(frozen=True)
class RunStatus:
    """A run as its counters say: every step is counted once, when it finished."""

    summary: RunSummary
    counters: dict[str, int]
    counts: dict[str, int]
    # "<account>#<region>" -> why its registry could not be listed (the first FAILED_SHOWN; the count is complete)
    failed_scopes: dict[str, str]

    @property
    def failed(self) -> int:
        return max(self.counters.get("scopes_failed", 0), len(self.failed_scopes))

    @property
    def done(self) -> bool:
        c = self.counters
        listed = c.get("scopes_listed", 0) + self.failed
        return listed >= len(self.summary.scopes) and c.get("batches_done", 0) >= c.get("batches_queued", 0)

    def as_dict(self) -> dict[str, Any]:
        c = self.counters
        total = len(self.summary.scopes)
        queued, done = c.get("batches_queued", 0), c.get("batches_done", 0)
        return {
            "run_id": self.summary.run_id,
            "job": self.summary.job,
            "by": self.summary.by,
            "reason": self.summary.reason,
            "started_at": self.summary.started_at,
            "state": "done" if self.done else "running",
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
