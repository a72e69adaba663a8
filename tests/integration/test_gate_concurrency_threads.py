"""Duplicate deliveries under real concurrency (issue 9): the same event delivered 5 times sequentially and 5 times
at once (5 threads released together by a barrier), through the real entry points and adapters on moto, over many
trials. Each delivery gets Lambda's retries. Whatever the interleaving: one action in ECR, one decision event, one
SNS message and one Slack message.

moto serves each request atomically (tests/aws_faults.atomic_moto), as AWS serves each API call; the threads
interleave between calls, which is where the gate's optimistic concurrency and the notifier's claims are tested.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from ecr_warden import runtime
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.records import ImageStatus
from ecr_warden.gate import entry
from ecr_warden.gate.dispatch import ScanGate
from ecr_warden.notify import entry as notify_entry
from ecr_warden.notify import service
from ecr_warden.settings import GateSettings
from tests.aws_faults import AwsFaults, Delivery, announcements, atomic_moto, deliver_async, install
from tests.events import CRITICAL
from tests.integration.test_gate_faults import scan_event
from tests.moto_stack import MotoStack, moto_stack
from tests.slack_stub import SlackStub, slack_stub

TRIALS = 20
DELIVERIES = 5
_serial = itertools.count()


class Context:
    function_name = "ecr-warden-dev-notifier"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ecr-warden-dev-notifier"
    aws_request_id = "test-request"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


class StaticFindings:
    def __init__(self, findings: dict[tuple[str, str], list[Finding]]) -> None:
        self.findings = findings

    def active_findings(self, repository: str, digest: str) -> list[Finding]:
        return list(self.findings.get((repository, digest), []))

    def coverage(self, repository: str, digest: str, repository_arn: str) -> tuple[str, str | None] | None:
        return None


class Trial:
    """One image, its scan event, and the deliveries of that event to the gate and of its decision to the notifier."""

    def __init__(self, stack: MotoStack, faults: AwsFaults, slack: SlackStub, findings: dict[Any, Any]) -> None:
        self.stack, self.faults, self.slack, self.findings = stack, faults, slack, findings
        self.repository = f"concurrency/trial-{next(_serial)}"
        stack.create_repository(self.repository)
        self.digest = stack.push(self.repository, "v1", f"seed-{uuid.uuid4()}")
        findings[(self.repository, self.digest)] = list(CRITICAL)
        self.raw = scan_event(self.repository, self.digest, {"CRITICAL": 1, "HIGH": 1, "TOTAL": 2})
        self.gate_settings = stack.gate_settings()
        self.notifier_settings = stack.notifier_settings()

    def gate_factory(self, settings: GateSettings, account: str) -> ScanGate:
        gate = entry.build_gate(settings, account)
        return ScanGate(gate.ctx, replace(gate.ports, enhanced=StaticFindings(self.findings)))

    def scan(self) -> Delivery:
        return deliver_async(lambda: entry.process(copy.deepcopy(self.raw), self.gate_settings, self.gate_factory))

    def notify(self, decision: dict[str, Any]) -> Delivery:
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Image Decision", "source": "ecr-warden",
                 "account": decision["account"], "time": decision["time"], "region": decision["region"],
                 "resources": [], "detail": decision}  # fmt: skip
        return deliver_async(lambda: notify_entry.process(copy.deepcopy(event), Context(), self.notifier_settings))


def run_together(deliver: Callable[[], Delivery], n: int = DELIVERIES) -> list[Delivery]:
    barrier = threading.Barrier(n)
    results: list[Delivery] = []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait()
        delivery = deliver()
        with lock:
            results.append(delivery)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == n, "a delivery hung"
    return results


def check_trial(trial: Trial, scans: list[Delivery], notified: list[Delivery]) -> None:
    """One action, one decision event, one SNS message, one Slack message."""
    check_gate(trial, scans)
    check_notifier(trial, notified)


def check_gate(trial: Trial, scans: list[Delivery]) -> None:
    assert all(d.completed for d in scans), [d.errors for d in scans]
    actions = sorted(d.result["action"] for d in scans)
    assert set(actions) <= {"quarantined", "noop"}, actions
    # one action: the quarantine tag was added to ECR once (a duplicate that found the announcement still owed may
    # report `quarantined` too: it completes ECR idempotently and resends under the same decision_id)
    added = [p for p in trial.faults.succeeded("ecr:PutImage") if p.get("repositoryName") == trial.repository]
    assert len(added) == 1, f"{len(added)} quarantine tags added for one decision ({actions}): not exactly one action"
    assert trial.stack.tags(trial.repository, trial.digest) == ["quarantined-" + trial.digest[7:19]]
    record = trial.stack.record(trial.repository, trial.digest)
    assert record is not None
    assert record.status is ImageStatus.QUARANTINED
    assert record.pending_announcement is None
    assert record.original_tags == ["v1"]
    announced = announcements(trial.stack.decisions(trial.repository, trial.digest))
    assert announced == ["quarantined"], f"announced {announced}: a duplicate decision event"


def check_notifier(trial: Trial, notified: list[Delivery]) -> None:
    assert all(d.completed for d in notified), [d.errors for d in notified]
    published = [p for p in trial.faults.succeeded("sns:Publish") if trial.digest in p.get("Message", "")]
    assert len(published) == 1, f"{len(published)} SNS messages for one decision"
    posted = [b for _, b in trial.slack.posted if trial.digest[7:19] in json.dumps(b)]
    assert len(posted) == 1, f"{len(posted)} Slack messages for one decision"


@pytest.fixture(scope="module")
def stack() -> Iterator[MotoStack]:
    with moto_stack() as running:
        yield running


@pytest.fixture
def world(stack: MotoStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Trial]]:
    from aws_lambda_powertools.utilities import parameters

    from ecr_warden.adapters import aws as aws_clients

    monkeypatch.setattr(service, "SLACK_INTERVAL_SECONDS", 0.0)
    faults = AwsFaults()
    install(monkeypatch, faults)
    runtime.forget_policy_sources()
    parameters.clear_caches()
    findings: dict[Any, Any] = {}
    with atomic_moto(), slack_stub() as slack:
        stack.set_webhook(slack.url("default"))
        yield lambda: Trial(stack, faults, slack, findings)
    aws_clients.reset_clients()
    runtime.forget_policy_sources()
    parameters.clear_caches()


def test_five_concurrent_deliveries_act_announce_and_message_once(world: Callable[[], Trial]) -> None:
    broken = []
    for n in range(TRIALS):
        trial = world()
        scans = run_together(trial.scan)
        decisions = trial.stack.decisions(trial.repository, trial.digest)
        notified = run_together(functools.partial(trial.notify, decisions[0])) if decisions else []
        try:
            check_trial(trial, scans, notified)
        except AssertionError as error:
            broken.append(f"trial {n}: {error}")
    assert not broken, "\n".join(broken)


def test_five_sequential_deliveries_act_announce_and_message_once(world: Callable[[], Trial]) -> None:
    for _ in range(3):
        trial = world()
        scans = [trial.scan() for _ in range(DELIVERIES)]
        decisions = trial.stack.decisions(trial.repository, trial.digest)
        notified = [trial.notify(decisions[0]) for _ in range(DELIVERIES)]
        check_trial(trial, scans, notified)
        assert [d.result["action"] for d in scans] == ["quarantined"] + ["noop"] * (DELIVERIES - 1)


# -- the test of the tests ---------------------------------------------------------------------------------------


def test_the_checker_catches_a_notifier_without_claims(
    world: Callable[[], Trial], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Break "one message per decision": the notify-state claim always succeeds."""
    from ecr_warden.adapters.notify_state import DynamoNotifyState

    monkeypatch.setattr(DynamoNotifyState, "claim", lambda self, image, notification, now: True)
    trial = world()
    scans = run_together(trial.scan)
    decisions = trial.stack.decisions(trial.repository, trial.digest)
    notified = run_together(lambda: trial.notify(decisions[0]))
    with pytest.raises(AssertionError, match="messages for one decision"):
        check_trial(trial, scans, notified)


def test_the_checker_catches_a_gate_without_optimistic_concurrency(
    world: Callable[[], Trial], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Break "records are written with optimistic concurrency": every save ignores the version it read."""
    from ecr_warden.adapters.audit_store import DynamoAuditStore

    save = DynamoAuditStore.save

    def blind_save(self: Any, record: Any, expected_version: int, claims: Any = ()) -> Any:
        current = self.get(record.repository, record.digest)
        return save(self, record, current.version if current else 0, claims)

    monkeypatch.setattr(DynamoAuditStore, "save", blind_save)
    caught = 0
    for _ in range(5):  # a race is needed: a few trials
        trial = world()
        scans = run_together(trial.scan)
        try:
            check_gate(trial, scans)
        except AssertionError:
            caught += 1
    assert caught, "five racing deliveries never broke a guarantee without optimistic concurrency"
