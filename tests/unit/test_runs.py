"""The run engine with in-memory ports: what is counted, when, and what a registry that can't be read does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3.dynamodb.types  # noqa: F401 - imported at collection, network on: urllib3 probes IPv6 when imported
import pytest

from ecr_warden.adapters.runs import DynamoRunProgress, unreachable
from ecr_warden.admin.ports import RepositoryPage
from ecr_warden.domain.images import Scope
from ecr_warden.runs.model import MAX_SCOPES, BatchResult, Job, PagePlan, RunStatus, RunStep, RunSummary
from ecr_warden.runs.ports import RunPorts
from ecr_warden.runs.service import EXPIRED_PAGE, RunEngine, RunRefused, StepRejected, scopes_of

A, B = Scope("111111111111", "us-east-1"), Scope("222222222222", "eu-west-1")


class Denied(Exception):
    response = {"Error": {"Code": "AccessDenied", "Message": "not authorized to perform sts:AssumeRole"}}


class Throttled(Exception):
    response = {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}


@dataclass
class Memory:
    """Queue and progress in memory, with the adapters' semantics: a marker is written once, with its counters;
    a page's plan is stored once, with its batches counted queued."""

    sent: list[RunStep] = field(default_factory=list)
    summaries: dict[str, RunSummary] = field(default_factory=dict)
    markers: set[tuple[str, str]] = field(default_factory=set)
    plans: dict[tuple[str, str], PagePlan] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    failed_scopes: dict[str, str] = field(default_factory=dict)
    aborted: dict[str, str] = field(default_factory=dict)
    refuse_send: Exception | None = None

    def send(self, steps: Any) -> None:
        if self.refuse_send is not None:
            raise self.refuse_send
        self.sent.extend(steps)

    def create(self, summary: RunSummary) -> bool:
        if summary.run_id in self.summaries:
            return False
        self.summaries[summary.run_id] = summary
        return True

    def abort(self, run_id: str, why: str | None) -> None:
        if why is None:
            self.aborted.pop(run_id, None)
        else:
            self.aborted[run_id] = why

    def lookup(self, run_id: str, key: str) -> tuple[Job | None, bool]:
        summary = self.summaries.get(run_id)
        return (summary.job if summary else None), (run_id, key) in self.markers

    def stored_plan(self, step: RunStep) -> PagePlan | None:
        return self.plans.get((step.run_id, step.plan_key))

    def plan(self, step: RunStep, plan: PagePlan) -> PagePlan:
        stored = self.plans.setdefault((step.run_id, step.plan_key), plan)
        if stored is plan:
            self._add(batches_queued=len(step.batches(plan.names)), repositories_listed=len(plan.names))
        return stored

    def _add(self, **add: int) -> None:
        for name, value in add.items():
            self.counters[name] = self.counters.get(name, 0) + value

    def _mark(self, step: RunStep, **add: int) -> bool:
        if (step.run_id, step.key) in self.markers:
            return False
        self.markers.add((step.run_id, step.key))
        self._add(**add)
        return True

    def listed(self, step: RunStep, last: bool) -> bool:
        return self._mark(step, scopes_listed=int(last))

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
        if summary is None:
            return None
        return RunStatus(summary, self.counters, self.counts, self.failed_scopes, None, self.aborted.get(run_id))

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
    run = engine(memory, {A: Registry(["ab"]), B: Registry([], error=Denied())})
    run.start("report-1", "report", [A, B], "alice", None)
    results = run_all(memory, run, lambda step: BatchResult({}, [], 1))
    assert any(r.startswith("registry unreachable: AccessDenied") for r in results)
    status = memory.status("report-1")
    assert status is not None
    assert status.complete
    assert status.state == "done_with_unreachable"  # complete, but not done: the CLI exits non-zero
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
    run = engine(memory, {A: Registry(["ab", "cd"])})
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


class Refused(Exception):
    response = {"Error": {"Code": "InvalidParameterException", "Message": "Invalid parameter: nextToken"}}


def test_a_list_step_retried_after_the_registry_changed_sends_its_first_plan_and_the_run_is_not_done_early() -> None:
    """The count after sending fails; SQS retries past FIFO's deduplication window, after repositories were
    created: the retry sends exactly what was sent first (same batches, same keys), counted once."""
    memory = Memory()
    registry = Registry([f"r{n:02d}" for n in range(30)])
    run = engine(memory, {A: registry, B: Registry(["ab"])})
    run.start("r", "sweep", [A, B], "alice", None)
    list_a = memory.sent[0]
    count, calls = memory.listed, []

    def failing(step: RunStep, last: bool) -> bool:
        calls.append(step)
        if len(calls) == 1:
            raise RuntimeError("DynamoDB: transaction cancelled")
        return count(step, last)

    memory.listed = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        run.step(list_a, lambda step: BatchResult({}))
    first = memory.sent[2:]
    registry.names = [f"new{n:02d}" for n in range(40)] + registry.names  # changed meanwhile
    run.step(list_a, lambda step: pytest.fail("a list step does no batch work"))
    assert memory.sent[2 + len(first) :] == first  # the same steps: SQS deduplicates or the markers count them once
    assert memory.counters["batches_queued"] == 2  # 25 + 5, once
    for batch in first:  # registry A's batches are done, B is still to list: not done
        run.step(batch, lambda step: BatchResult({}, [], len(step.repositories)))
    status = memory.status("r")
    assert status is not None
    assert status.state == "running"
    run.step(memory.sent[1], lambda step: BatchResult({}))  # B listed: one batch queued, not done yet
    assert status.state == "running"
    run_all(memory, run, lambda step: BatchResult({}, [], len(step.repositories)))
    assert status.state == "done"
    assert status.counters["repositories_listed"] == 31


def test_report_batches_are_of_5_repositories_sweep_and_reconcile_of_25() -> None:
    names = [f"r{n:04d}" for n in range(1000)]
    for job, size in (("report", 5), ("sweep", 25), ("reconcile", 25)):
        memory = Memory()
        run = engine(memory, {A: Registry(names)})
        run.start("r", job, [A], "alice", None)  # type: ignore[arg-type]
        run.step(memory.sent[0], lambda step: BatchResult({}))
        batches = memory.sent[1:]
        assert {len(s.repositories) for s in batches} == {size}, job
        assert len(batches) == 1000 // size
        assert batches[-1].index == 1000 // size - 1


def test_a_step_of_no_known_run_or_of_another_job_is_refused_before_any_work() -> None:
    memory = Memory()
    run = engine(memory, {A: Registry(["ab"])})
    stray = RunStep(kind="batch", run_id="gone", job="sweep", account=A.account, region=A.region, repositories=["ab"])
    with pytest.raises(StepRejected, match="no run gone"):
        run.step(stray, lambda step: pytest.fail("not worked on"))
    run.start("r", "report", [A], "alice", None)
    with pytest.raises(StepRejected, match="report run"):
        run.step(stray.following(run_id="r"), lambda step: pytest.fail("not worked on"))
    assert memory.counters == {}


def test_an_expired_page_token_fails_the_registry_instead_of_the_step_forever() -> None:
    memory = Memory()
    run = engine(memory, {A: Registry([], error=Refused())})
    run.start("r", "sweep", [A], "alice", None)
    with pytest.raises(Refused):  # the first page has no token: not a token ECR refuses, SQS retries it
        run.step(memory.sent[0], lambda step: BatchResult({}))
    redriven = memory.sent[0].following(page=3, page_token="x" * 65_536)
    assert run.step(redriven, lambda step: BatchResult({})) == f"registry unreachable: {EXPIRED_PAGE}"
    assert memory.failed_scopes == {A.account + "#" + A.region: EXPIRED_PAGE}


def test_a_start_that_could_not_queue_its_steps_says_aborted_and_a_retry_resumes_it() -> None:
    memory = Memory(refuse_send=RuntimeError("2 run step(s) not queued: InternalError"))
    run = engine(memory, {A: Registry(["ab"])})
    with pytest.raises(RuntimeError):
        run.start("r", "sweep", [A], "alice", None)
    status = memory.status("r")
    assert status is not None
    assert status.state == "aborted"
    assert "not queued" in str(status.as_dict()["aborted"])
    memory.refuse_send = None
    assert run.start("r", "sweep", [A], "alice", None)["new"] is False  # the invocation retried
    resumed = memory.status("r")
    assert resumed is not None
    assert resumed.state == "running"


def test_new_steps_are_validated_and_page_tokens_may_be_long() -> None:
    step = RunStep(kind="list", run_id="r", job="report", account=A.account, region=A.region)
    assert step.following(page_token="t" * 65_536).page_token
    with pytest.raises(ValueError, match="validation error"):
        step.following(page_token="t" * 65_537)
    with pytest.raises(ValueError, match="validation error"):
        step.following(index=201)
    assert step.following(kind="batch", index=199).index == 199  # a page of 1,000 in report batches of 5


def test_status_says_when_it_was_last_counted_and_what_state_it_is_in() -> None:
    summary = RunSummary("r", "sweep", "alice", None, "2026-01-01T00:00:00Z", 2, "d")
    running = RunStatus(summary, {"scopes_listed": 1}, {}, {}, "2026-01-01T00:05:00Z")
    assert (running.as_dict()["state"], running.as_dict()["updated_at"]) == ("running", "2026-01-01T00:05:00Z")
    done = RunStatus(summary, {"scopes_listed": 2, "batches_queued": 1, "batches_done": 1}, {}, {})
    assert done.as_dict()["state"] == "done"
    partly = RunStatus(summary, {"scopes_listed": 1, "scopes_failed": 1}, {}, {"x": "AccessDenied"})
    assert partly.as_dict()["state"] == "done_with_unreachable"
    keys = {"run_id", "job", "by", "reason", "started_at", "state", "registries", "batches", "repositories", "counts",
            "failed_registries", "updated_at"}  # fmt: skip
    assert keys <= set(done.as_dict())


class AwsError(Exception):
    """botocore's ClientError as the code reads it (importing botocore would probe the network)."""

    def __init__(self, code: str, message: str = "no", **response: Any) -> None:
        super().__init__(f"An error occurred ({code}): {message}")
        self.response = {"Error": {"Code": code, "Message": message}, **response}


def aws_error(code: str, message: str = "no") -> Exception:
    return AwsError(code, message)


def test_one_repository_aws_refuses_is_reported_and_the_batch_goes_on() -> None:
    from types import SimpleNamespace

    from ecr_warden.repository_settings.context import Outcome
    from ecr_warden.runs.jobs import work

    def reconcile(run_id: str, names: list[str]) -> list[Outcome]:
        (name,) = names
        if name == "denied":
            raise aws_error("AccessDeniedException", "explicit deny in a resource-based policy")
        if name == "slow":
            raise aws_error("ThrottlingException")
        return [Outcome("enforced", name)]

    guard = SimpleNamespace(reconcile=reconcile, ports=SimpleNamespace(registry=None))
    tools: Any = SimpleNamespace(settings_guard=lambda dry_run: guard)
    step = RunStep(kind="batch", run_id="r", job="reconcile", account=A.account, region=A.region,
                   repositories=["ok", "denied", "ok2"])  # fmt: skip
    result = work(step, tools)
    assert result.counts == {"enforced": 2, "errors": 1}
    assert {"kind": "error", "account": A.account, "region": A.region, "repository": "denied",
            "error": "AccessDeniedException: explicit deny in a resource-based policy"} in result.rows  # fmt: skip
    with pytest.raises(Exception, match="Throttling"):  # not the repository's fault: SQS retries the step
        work(step.following(repositories=["ok", "slow"]), tools)


class Transactions:
    """DynamoDB's TransactWriteItems, cancelled for the reasons given, in turn."""

    def __init__(self, *cancellations: list[str]) -> None:
        self.cancellations, self.calls = list(cancellations), 0

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> None:
        self.calls += 1
        if self.cancellations:
            reasons = [{"Code": code} for code in self.cancellations.pop(0)]
            raise AwsError("TransactionCanceledException", "cancelled", CancellationReasons=reasons)


def test_a_count_is_retried_on_conflicts_and_throttling_not_on_a_marker_that_exists() -> None:
    step = RunStep(kind="batch", run_id="r", job="sweep", account=A.account, region=A.region, repositories=["ab"])
    slept: list[float] = []

    def progress(client: Transactions) -> DynamoRunProgress:
        return DynamoRunProgress("t", client, sleep=slept.append)

    busy = Transactions(["None", "TransactionConflict"], ["None", "ThrottlingError"],
                        ["ProvisionedThroughputExceeded", "None"])  # fmt: skip
    assert progress(busy).finished(step, BatchResult({"drift": 1})) is True
    assert (busy.calls, len(slept)) == (4, 3)
    assert progress(Transactions(["ConditionalCheckFailed", "None"])).finished(step, BatchResult({})) is False
    with pytest.raises(StepRejected):  # the summary is gone: not "already counted"
        progress(Transactions(["None", "ConditionalCheckFailed"])).finished(step, BatchResult({}))
    always = Transactions(*[["None", "TransactionConflict"]] * 9)
    with pytest.raises(Exception, match="TransactionCanceled"):
        progress(always).finished(step, BatchResult({}))
    assert always.calls == 5
