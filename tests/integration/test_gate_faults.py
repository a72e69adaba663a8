"""Fault injection on moto with the real adapters (issue 9): for every AWS call of a quarantine, an archive, a
marker tag and a release, a throttling error, an HTTP 500, a read timeout and a connect timeout at exactly that
call, then Lambda's real retry behaviour (two asynchronous retries, then the on-failure destination).

"late-timeout" is the ambiguous case too: the call takes effect and its answer is lost (the caller sees a
ReadTimeoutError). An announcement is identified by its decision_id: the same decision resent under the same id
(an outbox retry) is one announcement, which consumers deduplicate (tests/aws_faults.announcements).

For 100% of the points the end state is consistent: the image is fully quarantined (archived, tagged, released)
with its record and exactly one announcement, or it is untouched / recorded as unfinished and the event was
retried and parked; and then a redrive of the parked event finishes it, still with one announcement. Never a lost
tag, never a record that disagrees with ECR, never a duplicate announcement.

The points are not listed by hand: a clean run of each scenario records its calls (`ecr:PutImage#1`, ...), so a
new AWS call in the code is injected at as soon as it exists.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from ecr_warden import runtime
from ecr_warden.actions import find
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.records import ImageStatus
from ecr_warden.gate import entry
from ecr_warden.gate.dispatch import ScanGate
from ecr_warden.settings import GateSettings
from tests.aws_faults import FAULT_KINDS, LAMBDA_ATTEMPTS, AwsFaults, Delivery, announcements, deliver_async, install
from tests.conftest import load_event
from tests.events import ACCOUNT, CRITICAL
from tests.fakes import FakeClock
from tests.moto_stack import MotoStack, moto_stack

_serial = itertools.count()


@dataclass(frozen=True)
class Scenario:
    name: str
    policy: dict[str, Any]
    findings: tuple[Finding, ...]
    counts: dict[str, int]
    action: str  # what the decision is announced as
    status: ImageStatus

    @property
    def parameter(self) -> str:
        return f"/faults/{self.name}"


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("quarantine", {"rules": [{"name": "r"}]}, tuple(CRITICAL), {"CRITICAL": 1, "HIGH": 1, "TOTAL": 2},
                 "quarantined", ImageStatus.QUARANTINED),
        Scenario("archive", {"rules": [{"name": "r", "block_method": "archive"}]}, tuple(CRITICAL),
                 {"CRITICAL": 1, "HIGH": 1, "TOTAL": 2}, "archived", ImageStatus.ARCHIVED),
        Scenario("tag", {"rules": [{"name": "r", "block_at": None, "tag_at": "HIGH"}]}, (CRITICAL[1],),
                 {"CRITICAL": 0, "HIGH": 1, "TOTAL": 1}, "tagged", ImageStatus.TAGGED),
        Scenario("release", {"rules": [{"name": "r"}]}, tuple(CRITICAL), {"CRITICAL": 1, "HIGH": 1, "TOTAL": 2},
                 "released", ImageStatus.RELEASED),
    )
}  # fmt: skip


class InjectedFindings:
    """Inspector's ListFindings for the gate (moto's ignores its filters), failing like a client would."""

    def __init__(self, faults: AwsFaults, findings: dict[tuple[str, str], list[Finding]]) -> None:
        self.faults, self.findings = faults, findings

    def active_findings(self, repository: str, digest: str) -> list[Finding]:
        self.faults.call("inspector2", "ListFindings")
        return list(self.findings.get((repository, digest), []))

    def coverage(self, repository: str, digest: str, repository_arn: str) -> tuple[str, str | None] | None:
        self.faults.call("inspector2", "ListCoverage")
        return None


@dataclass
class Case:
    """One image, in a repository of its own, and how to run the scenario's event against it."""

    stack: MotoStack
    faults: AwsFaults
    scenario: Scenario
    repository: str
    digest: str
    run: Callable[[], Any]
    harness_clock: FakeClock

    @property
    def quarantine_tag(self) -> str:
        return "quarantined-" + self.digest[7:19]

    def deliver(self) -> Delivery:
        def fresh_invocation() -> None:  # a cold start: the policy is read again (SSM is a point too)
            from aws_lambda_powertools.utilities import parameters

            self.faults.new_invocation()
            runtime.forget_policy_sources()
            parameters.clear_caches()

        return deliver_async(self.run, fresh_invocation, lambda seconds: self.clock.advance(seconds=seconds))

    @property
    def clock(self) -> FakeClock:
        return self.harness_clock


class Harness:
    def __init__(self, stack: MotoStack, faults: AwsFaults) -> None:
        self.stack, self.faults = stack, faults
        self.clock = FakeClock(datetime.now(UTC))  # the gate's clock: Lambda's retry delays pass on it
        self.findings: dict[tuple[str, str], list[Finding]] = {}
        for scenario in SCENARIOS.values():
            stack.put_policy(scenario.parameter, scenario.policy)

    def gate_factory(self, settings: GateSettings, account: str) -> ScanGate:
        gate = entry.build_gate(settings, account)
        ctx = replace(gate.ctx, now=self.clock)
        return ScanGate(ctx, replace(gate.ports, enhanced=InjectedFindings(self.faults, self.findings)))

    def case(self, scenario: Scenario) -> Case:
        repository = f"faults/{scenario.name}-{next(_serial)}"
        self.stack.create_repository(repository)
        digest = self.stack.push(repository, "v1", f"seed-{uuid.uuid4()}")
        self.findings[(repository, digest)] = list(scenario.findings)
        settings = self.stack.gate_settings(scenario.parameter)
        raw = scan_event(repository, digest, scenario.counts)

        def scan() -> Any:
            result = entry.process(copy.deepcopy(raw), settings, self.gate_factory)
            assert result.get("status") != "rejected", f"a transient fault was treated as bad input: {result}"
            return result

        case = Case(self.stack, self.faults, scenario, repository, digest, scan, self.clock)
        if scenario.name != "release":
            return case
        assert case.deliver().completed  # quarantined without a fault; the release is what is faulted
        assert [d["action"] for d in self.stack.decisions(repository, digest)] == ["quarantined"]
        request = {"repository": repository, "digest": digest, "reason": "accepted risk", "by": "alice"}
        case.run = lambda: find("release").invoke(request, self.gate_factory(settings, ACCOUNT).actor)
        return case


def scan_event(repository: str, digest: str, counts: dict[str, int]) -> dict[str, Any]:
    raw = copy.deepcopy(load_event("inspector2-scan-critical.json"))
    raw["id"] = str(uuid.uuid4())
    raw["detail"].update(
        {
            "repository-name": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{repository}",
            "image-digest": digest,
            "image-tags": ["v1"],
            "finding-severity-counts": counts,
        }
    )
    return raw


# -- the checker -------------------------------------------------------------------------------------------------


def check_end_state(case: Case, delivery: Delivery) -> None:
    """The guarantees, after one asynchronous delivery (and its retries) of the scenario's event."""
    stack, scenario = case.stack, case.scenario
    tags = stack.tags(case.repository, case.digest)
    record = stack.record(case.repository, case.digest)
    announced = announcements(stack.decisions(case.repository, case.digest))
    if scenario.name == "release":
        announced = announced[1:]  # the quarantine before it
    archived = case.faults.storage.get((case.repository, case.digest)) == "ARCHIVE"
    assert tags, "the image lost its last tag"
    assert announced in ([], [scenario.action]), f"announced {announced}: a duplicate or a wrong announcement"
    if delivery.completed:
        assert announced == [scenario.action], f"completed but announced {announced}"
        assert record is not None
        assert record.status is scenario.status, record.status
        assert record.pending_announcement is None, "completed but still owes an announcement"
        assert not record.incomplete, record.incomplete
        assert record.original_tags == ["v1"], record.original_tags
        assert tags == expected_tags(case, record), f"ECR has {tags}"
        assert archived is (scenario.status is ImageStatus.ARCHIVED), "the storage class disagrees with the record"
        return
    assert_record_agrees_with_ecr(case, record, tags, archived, announced)


def expected_tags(case: Case, record: Any) -> list[str]:
    status = case.scenario.status
    if status is ImageStatus.QUARANTINED:
        return [case.quarantine_tag]
    if status is ImageStatus.TAGGED:
        return sorted(["v1", str(record.marker_tag)])
    return ["v1"]  # archived (tags stay), released


def assert_record_agrees_with_ecr(
    case: Case, record: Any, tags: list[str], archived: bool, announced: list[str]
) -> None:
    """Parked after three failed attempts: untouched, or recorded as unfinished (a redrive finishes it)."""
    unfinished = record is not None and (record.pending_announcement is not None or bool(record.incomplete))
    if case.scenario.name == "release":
        assert record is not None
        if record.status is ImageStatus.QUARANTINED:
            assert tags == [case.quarantine_tag], f"still quarantined by the record, ECR has {tags}"
        else:
            assert record.status is ImageStatus.RELEASED
            assert set(tags) <= {"v1", case.quarantine_tag}
            assert unfinished or (tags == ["v1"] and announced == ["released"]), "a release that claims too much"
        return
    if record is None or record.status not in (ImageStatus.QUARANTINED, ImageStatus.ARCHIVED, ImageStatus.TAGGED):
        assert tags == ["v1"], f"no decision recorded, yet ECR has {tags}"
        assert not archived, "archived without a record"
        assert announced == [], "announced without a record"
        return
    assert record.status is case.scenario.status
    assert "v1" in record.original_tags, "the record lost the original tags"
    if not unfinished:
        assert announced == [case.scenario.action]
        assert tags == expected_tags(case, record), f"the record claims {record.status}, ECR has {tags}"
        assert archived is (record.status is ImageStatus.ARCHIVED)
        return
    assert set(tags) <= {"v1", case.quarantine_tag, str(record.marker_tag)}, tags


def check_redrive(case: Case) -> None:
    """The parked event, redriven once the fault is gone, finishes the job and announces it once in all."""
    case.faults.reset()
    case.clock.advance(minutes=10)  # someone looks at the dead-letter queue
    delivery = case.deliver()
    assert delivery.completed, f"the redrive failed: {delivery.errors!r}"
    check_end_state(case, delivery)


# -- fixtures --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> Iterator[MotoStack]:
    with moto_stack() as running:
        yield running


@pytest.fixture
def harness(stack: MotoStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    from ecr_warden.adapters import aws as aws_clients

    faults = AwsFaults()
    install(monkeypatch, faults)
    runtime.forget_policy_sources()
    yield Harness(stack, faults)
    aws_clients.reset_clients()
    runtime.forget_policy_sources()


def points_of(harness: Harness, scenario: Scenario) -> list[str]:
    """Every AWS call point of one clean delivery, in order."""
    case = harness.case(scenario)
    harness.faults.reset()
    delivery = case.deliver()
    check_end_state(case, delivery)
    return list(dict.fromkeys(harness.faults.calls))


def run_points(harness: Harness, scenario: Scenario, kinds: tuple[str, ...], times: int) -> list[str]:
    """Inject at every point; the list of guarantees broken (empty: all held)."""
    points = points_of(harness, scenario)
    assert len(points) >= 5, points
    broken = []
    for point, kind in itertools.product(points, kinds):
        operation, occurrence = point.rsplit("#", 1)
        case = harness.case(scenario)
        harness.faults.reset()
        harness.faults.plan(operation, int(occurrence), kind, times=times)
        delivery = case.deliver()
        try:
            assert harness.faults.injected, f"{point} was not reached"
            check_end_state(case, delivery)
            if delivery.parked:
                check_redrive(case)
        except AssertionError as error:
            broken.append(f"{scenario.name} {point} {kind}: {error}")
    return broken


# -- the suite ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_one_fault_at_any_call_is_absorbed_by_lambdas_retries(harness: Harness, scenario: str) -> None:
    broken = run_points(harness, SCENARIOS[scenario], (*FAULT_KINDS, "late-timeout"), times=1)
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_fault_that_outlasts_every_retry_parks_a_consistent_state_that_a_redrive_finishes(
    harness: Harness, scenario: str
) -> None:
    broken = run_points(harness, SCENARIOS[scenario], ("connect-timeout",), times=LAMBDA_ATTEMPTS)
    assert not broken, "\n".join(broken)


def test_every_kind_of_call_of_a_quarantine_is_a_point(harness: Harness) -> None:
    operations = {point.rsplit("#", 1)[0] for point in points_of(harness, SCENARIOS["quarantine"])}
    assert {"ssm:GetParameter", "ecr:DescribeImages", "ecr:PutImage", "ecr:BatchDeleteImage", "events:PutEvents",
            "inspector2:ListFindings"} <= operations, operations  # fmt: skip
    assert any(op.startswith("dynamodb:") for op in operations)
    archive = {point.rsplit("#", 1)[0] for point in points_of(harness, SCENARIOS["archive"])}
    assert "ecr:UpdateImageStorageClass" in archive


# -- the test of the tests ---------------------------------------------------------------------------------------


def test_the_checker_catches_a_duplicate_announcement(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Break "announced once" on purpose: every announcement goes out twice. The checker must say so."""
    from ecr_warden.adapters.decision_bus import EventBridgeAnnouncer

    publish = EventBridgeAnnouncer.publish

    def twice(self: EventBridgeAnnouncer, detail: Any) -> None:
        publish(self, detail)
        publish(self, detail.model_copy(update={"decision_id": str(uuid.uuid4())}))  # a second announcement

    monkeypatch.setattr(EventBridgeAnnouncer, "publish", twice)
    case = harness.case(SCENARIOS["quarantine"])
    with pytest.raises(AssertionError, match="duplicate"):
        check_end_state(case, case.deliver())


def test_the_checker_catches_a_record_that_claims_a_quarantine_ecr_does_not_have(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Break "never a record that disagrees with ECR": BatchDeleteImage silently does nothing."""
    from ecr_warden.adapters.registry import EcrRegistry

    monkeypatch.setattr(EcrRegistry, "remove_tags", lambda self, repository, tags: [])
    case = harness.case(SCENARIOS["quarantine"])
    with pytest.raises(AssertionError, match="ECR has"):
        check_end_state(case, case.deliver())
