"""The run engine with in-memory ports: what is counted, when, and what a registry that can't be read does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from ecr_warden.adapters.runs import unreachable
from ecr_warden.admin.ports import RepositoryPage
from ecr_warden.domain.images import Scope
from ecr_warden.runs.model import MAX_SCOPES, BatchResult, RunStatus, RunStep, RunSummary
from ecr_warden.runs.ports import RunPorts
from ecr_warden.runs.service import RunEngine, RunRefused, scopes_of

A, B = Scope("111111111111", "us-east-1"), Scope("222222222222", "eu-west-1")


class Denied(Exception):
    response = {"Error": {"Code": "AccessDenied", "Message": "not authorized to perform sts:AssumeRole"}}


class Throttled(Exception):
    response = {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}


@dataclass
class Memory:
    """Queue and progress in memory, with the adapters' semantics: a marker is written once, with its counters."""

    sent: list[RunStep] = field(default_factory=list)
    summaries: dict[str, RunSummary] = field(default_factory=dict)
    markers: set[tuple[str, str]] = field(default_factory=set)
    counters: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    failed_scopes: dict[str, str] = field(default_factory=dict)

    def send(self, steps: Any) -> None:
        self.sent.extend(steps)

    def create(self, summary: RunSummary) -> bool:
        if summary.run_id in self.summaries:
            return False
        self.summaries[summary.run_id] = summary
        return True

    def counted(self, run_id: str, key: str) -> bool:
        return (run_id, key) in self.markers

    def _mark(self, step: RunStep, **add: int) -> bool:
        if (step.run_id, step.key) in self.markers:
            return False
        self.markers.add((step.run_id, step.key))
        for name, value in add.items():
            self.counters[name] = self.counters.get(name, 0) + value
        return True

    def listed(self, step: RunStep, batches: int, repositories: int, last: bool) -> bool:
        return self._mark(step, batches_queued=batches, repositories_listed=repositories, scopes_listed=int(last))

    def failed(self, step: RunStep, why: str) -> bool:
        self.failed_scopes[step.group] = why
        return self._mark(step, scopes_failed=1)

    def finished(self, step: RunStep, result: BatchResult) -> bool:
        if not self._mark(step, batches_done=1, repositories_done=len(step.repositories)):
            return False
        for kind, n in result.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + n
        return True

    def status(self, run_id: str) -> RunStatus | None:
        summary = self.summaries.get(run_id)
        return RunStatus(summary, self.counters, self.counts, self.failed_scopes) if summary else None

    def rows(self, run_id: str, limit: int) -> list[dict[str, Any]]:
        return []


class Registry:
    def __init__(self, names: list[str], page: int = 1000, error: Exception | None = None) -> None:
        self.names, self.page, self.error = names, page, error

    def repositories(self, page_token: str | None) -> RepositoryPage:
        if self.error is not None:
            raise self.error
        start = int(page_token or 0)
        end = start + self.page
        return RepositoryPage(self.names[start:end], str(end) if end < len(self.names) else None)


def engine(memory: Memory, registries: dict[Scope, Registry]) -> RunEngine:
    ports = RunPorts(queue=memory, progress=memory, lister=registries.__getitem__, unreachable=unreachable)
    return RunEngine(ports)


def run_all(memory: Memory, run: RunEngine, work: Any) -> list[str]:
    results, position = [], 0
    while position < len(memory.sent):
        results.append(run.step(memory.sent[position], work))
        position += 1
    return results


def test_pages_become_batches_of_25_then_the_next_page_in_the_same_group() -> None:
    memory = Memory()
    run = engine(memory, {A: Registry([f"r{n}" for n in range(60)], page=50)})
    run.start("sweep-1", "sweep", [A], "alice", None)
    run_all(memory, run, lambda step: BatchResult({"drift": len(step.repositories)}, [], len(step.repositories)))
    batches = [s for s in memory.sent if s.kind == "batch"]
    assert [len(s.repositories) for s in batches] == [25, 25, 10]
    assert {s.group for s in memory.sent} == {"111111111111#us-east-1"}
    status = memory.status("sweep-1")
    assert status is not None
    assert status.done
    assert status.counters == {"batches_queued": 3, "repositories_listed": 60, "scopes_listed": 1, "batches_done": 3,
                               "repositories_done": 60}  # fmt: skip
    assert status.counts == {"drift": 60}


def test_a_registry_that_refuses_the_role_is_reported_and_the_run_still_ends() -> None:
    memory = Memory()
    run = engine(memory, {A: Registry(["a"]), B: Registry([], error=Denied())})
    run.start("report-1", "report", [A, B], "alice", None)
    results = run_all(memory, run, lambda step: BatchResult({}, [], 1))
    assert any(r.startswith("registry unreachable: AccessDenied") for r in results)
    status = memory.status("report-1")
    assert status is not None
    assert status.done
    assert status.as_dict()["registries"] == {"total": 2, "listed": 1, "failed": 1, "pending": 0}
    assert "sts:AssumeRole" in status.failed_scopes["222222222222#eu-west-1"]


def test_throttling_is_retried_by_sqs_not_recorded_as_a_failed_registry() -> None:
    memory = Memory()
    run = engine(memory, {A: Registry([], error=Throttled())})
    run.start("r", "sweep", [A], "alice", None)
    with pytest.raises(Throttled):
        run.step(memory.sent[0], lambda step: BatchResult({}))
    assert memory.failed_scopes == {}
    assert memory.counters == {}


def test_a_failed_batch_is_not_counted_and_its_redelivery_is_counted_once() -> None:
    memory = Memory()
    run = engine(memory, {A: Registry(["a", "b"])})
    run.start("r", "sweep", [A], "alice", None)
    run.step(memory.sent[0], lambda step: BatchResult({}))
    batch = memory.sent[1]

    def boom(step: RunStep) -> BatchResult:
        raise RuntimeError("ECR timed out")

    with pytest.raises(RuntimeError):
        run.step(batch, boom)
    status = memory.status("r")
    assert status is not None
    assert not status.done
    assert status.as_dict()["batches"]["pending"] == 1
    assert run.step(batch, lambda step: BatchResult({"undecided": 1}, [], 2)) == "2 of 2 repositories worked on"
    assert run.step(batch, lambda step: pytest.fail("a counted step is not worked on again")) == "already done"
    assert memory.counts == {"undecided": 1}
    assert status.done


def test_a_run_id_names_one_run() -> None:
    memory = Memory()
    run = engine(memory, {A: Registry([])})
    assert run.start("r", "sweep", [A], "alice", None)["new"] is True
    assert run.start("r", "sweep", [A], "alice", None)["new"] is False  # a retried request
    with pytest.raises(RunRefused, match="another run"):
        run.start("r", "reconcile", [A], "alice", None)


def test_scopes_are_every_account_in_every_region_once_and_bounded() -> None:
    assert scopes_of(["1", "2", "1"], ["x", "y"]) == [
        Scope("1", "x"),
        Scope("1", "y"),
        Scope("2", "x"),
        Scope("2", "y"),
    ]
    with pytest.raises(RunRefused):
        scopes_of([], ["x"])
    with pytest.raises(RunRefused, match=str(MAX_SCOPES)):
        scopes_of([str(n) for n in range(MAX_SCOPES + 1)], ["x"])


def test_a_step_names_its_registry_and_rejects_what_it_does_not_know() -> None:
    step = RunStep.model_validate({"kind": "batch", "run_id": "r", "job": "sweep", "account": "111111111111",
                                   "region": "us-east-1", "page": 2, "index": 3, "repositories": ["ab"]})  # fmt: skip
    assert (step.group, step.key) == ("111111111111#us-east-1", "batch#111111111111#us-east-1#2#3")
    for bad in ({"region": "evil.example.com"}, {"job": "delete"}, {"repositories": ["ab"] * 26}, {"extra": 1}):
        with pytest.raises(ValueError, match="validation error"):
            RunStep.model_validate({**step.model_dump(), **bad})
