"""Fault injection on the in-memory fakes at *every* call, not only the first of each method: the N-th call of
each port method of a quarantine, an archive, a marker tag and a release fails (throttling, 5xx, timeout), and
Lambda's retries (or the admin running the release again) follow. tests/unit/test_gate_fault_injection.py fails
the first call of each method; the write that clears an announcement the record owes is a second `save`, and
only an N-th-call fault reaches it (it did: a release announced twice, see restore.finish).

The moto-level suite with the real adapters and botocore errors is tests/integration/test_gate_faults.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from ecr_warden.actions import find
from ecr_warden.domain.records import ImageStatus
from ecr_warden.policy.load import parse_policy
from tests.aws_faults import LAMBDA_RETRY_DELAYS, announcements
from tests.events import CRITICAL, inspector_scan
from tests.fakes import REPOSITORY, FakeAwsError, Fakes, _Port

LAMBDA_ATTEMPTS = 3
ERRORS: dict[str, Callable[[], BaseException]] = {
    "throttling": lambda: FakeAwsError("ThrottlingException", "Rate exceeded"),
    "server": lambda: FakeAwsError("InternalServerError", "injected 500"),
    "timeout": lambda: TimeoutError("read timed out"),
}
PORTS = ("registry", "enhanced", "store", "announcer", "checks")
POLICIES = {
    "quarantine": {"rules": [{"name": "r"}]},
    "archive": {"rules": [{"name": "r", "block_method": "archive"}]},
    "tag": {"rules": [{"name": "r", "block_at": None, "tag_at": "HIGH"}]},
    "release": {"rules": [{"name": "r"}]},
}
EXPECTED = {
    "quarantine": ("quarantined", ImageStatus.QUARANTINED),
    "archive": ("archived", ImageStatus.ARCHIVED),
    "tag": ("tagged", ImageStatus.TAGGED),
    "release": ("released", ImageStatus.RELEASED),
}


def fail_nth(port: _Port, method: str, n: int, error: BaseException, times: int = 1) -> None:
    """The n-th call of `method` from now on (and the next `times - 1` calls after it) raises `error`."""
    seen = [0]

    def hook() -> None:
        seen[0] += 1
        if seen[0] == n:
            port.fail(method, error, times)
        else:
            port.before(method, hook)

    port.before(method, hook)


def setup(scenario: str) -> tuple[Fakes, Callable[[], Any], str]:
    fakes = Fakes()
    fakes.registry.create_repository()
    digest = fakes.registry.push("v1", "bad")
    policy = parse_policy(json.dumps(POLICIES[scenario]))
    if scenario == "tag":
        fakes.enhanced.set(digest, [CRITICAL[1]])
        event = inspector_scan(digest, ["v1"], {"CRITICAL": 0, "HIGH": 1, "TOTAL": 1})
    else:
        fakes.enhanced.set(digest, CRITICAL)
        event = inspector_scan(digest, ["v1"], {"CRITICAL": 1, "HIGH": 1, "TOTAL": 2})
    run: Callable[[], Any] = lambda: fakes.gate(policy).handle(event)  # noqa: E731
    if scenario == "release":
        run()
        request = {"repository": REPOSITORY, "digest": digest, "reason": "accepted", "by": "alice"}
        run = lambda: find("release").invoke(request, fakes.gate(policy).actor)  # noqa: E731
    fakes.reset_calls()
    fakes.announcer.clear()
    return fakes, run, digest


def every_call(scenario: str) -> list[tuple[str, str, int]]:
    fakes, run, _ = setup(scenario)
    run()
    return [(port, method, n) for port in PORTS for method, count in getattr(fakes, port).calls.items()
            for n in range(1, count + 1)]  # fmt: skip


def with_retries(
    run: Callable[[], Any], attempts: int = LAMBDA_ATTEMPTS, fakes: Fakes | None = None
) -> Exception | None:
    """Lambda's retries (or an admin running the release again), a minute and then two minutes apart."""
    last: Exception | None = None
    for attempt in range(attempts):
        if attempt and fakes is not None:
            fakes.clock.advance(seconds=LAMBDA_RETRY_DELAYS[attempt - 1])
        try:
            run()
            return None
        except Exception as exc:  # the invocation failed: Lambda (or the admin) runs it again
            last = exc
    return last


def check(fakes: Fakes, digest: str, scenario: str, error: Exception | None) -> None:
    """Done once and announced once; or, when every attempt failed, never a lost tag nor a claimed action that
    ECR does not show, never a duplicate announcement."""
    action, status = EXPECTED[scenario]
    tags = fakes.registry.tags(digest)
    record = fakes.store.record(digest)
    announced = announcements(fakes.announcer.published)
    assert tags, "the image lost its last tag"
    assert announced in ([], [action]), f"announced {announced}: a duplicate"
    owes = record is not None and (record.pending_announcement is not None or bool(record.incomplete))
    if error is None:
        assert announced == [action]
        assert record is not None
        assert record.status is status
        assert not owes, "completed, yet the record still owes something"
        if status is ImageStatus.QUARANTINED:
            assert tags == ["quarantined-" + digest[7:19]]
        elif status is ImageStatus.TAGGED:
            assert tags == sorted(["v1", str(record.marker_tag)])
        else:
            assert tags == ["v1"]
        assert (fakes.registry.status(digest) == "ARCHIVED") is (status is ImageStatus.ARCHIVED)
        return
    if record is not None and record.status is status and not owes:
        assert announced == [action], "the record says done, but it was never announced"


@pytest.mark.parametrize("error", sorted(ERRORS))
@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_one_fault_at_the_nth_call_of_any_method_is_absorbed(scenario: str, error: str) -> None:
    broken = []
    points = every_call(scenario)
    assert len(points) >= 4, points
    for port, method, n in points:
        fakes, run, digest = setup(scenario)
        fail_nth(getattr(fakes, port), method, n, ERRORS[error]())
        try:
            outcome = with_retries(run, fakes=fakes)
            assert outcome is None, f"three attempts, one fault, still failing: {outcome!r}"
            check(fakes, digest, scenario, outcome)
        except AssertionError as exc:
            broken.append(f"{scenario} {port}.{method}#{n} {error}: {exc}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_a_fault_at_the_nth_call_on_every_attempt_parks_a_consistent_state_that_a_redrive_finishes(
    scenario: str,
) -> None:
    broken = []
    for port, method, n in every_call(scenario):
        fakes, run, digest = setup(scenario)
        fail_nth(getattr(fakes, port), method, n, ERRORS["throttling"](), times=10**6)
        try:
            check(fakes, digest, scenario, with_retries(run, fakes=fakes))
            getattr(fakes, port)._faults.clear()  # the fault is gone; the parked event is redriven
            getattr(fakes, port)._hooks.clear()
            fakes.clock.advance(minutes=10)  # someone looks at the dead-letter queue
            check(fakes, digest, scenario, with_retries(run, attempts=1, fakes=fakes))
        except AssertionError as exc:
            broken.append(f"{scenario} {port}.{method}#{n}: {exc}")
    assert not broken, "\n".join(broken)


def test_a_release_whose_last_record_write_fails_is_announced_once() -> None:
    """Regression: restore.finish announced, then cleared the owed announcement; when that write failed, the retry
    announced the release again under a new decision id (a second Slack message). The retry now announces it as
    the same decision (the debt's decision_id), which consumers deduplicate."""
    fakes, run, digest = setup("release")
    fail_nth(fakes.store, "save", 2, FakeAwsError("ThrottlingException"))
    assert with_retries(run, fakes=fakes) is None
    assert announcements(fakes.announcer.published) == ["released"]
    assert len({d.decision_id for d in fakes.announcer.published}) == 1
    assert fakes.registry.tags(digest) == ["v1"]
    assert fakes.store.require(digest).pending_announcement is None


def test_a_release_whose_announcement_fails_still_owes_it_and_announces_it_on_the_retry() -> None:
    fakes, run, digest = setup("release")
    fakes.announcer.reject()
    assert with_retries(run, attempts=1, fakes=fakes) is not None
    assert fakes.store.require(digest).pending_announcement is not None
    assert fakes.announcer.actions() == []
    assert with_retries(run, fakes=fakes) is None
    assert fakes.announcer.actions() == ["released"]
    assert fakes.store.require(digest).pending_announcement is None


# -- the test of the tests ---------------------------------------------------------------------------------------


def test_the_checker_catches_a_release_that_announces_before_it_pays_its_debt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the defect back (announce, then clear the debt) and the suite's checker must catch it."""
    from ecr_warden.gate import restore

    finish = restore.finish

    def announce_first(actor: Any, record: Any, decision: Any, trigger: Any) -> Any:
        if record.pending_announcement is not None:
            plan = restore.Plan(record, record.version, restore.Action.RELEASED, None, "released")
            actor.executor.announce(plan, decision, trigger)  # announced before the debt is recorded as paid
        return finish(actor, record, decision, trigger)

    monkeypatch.setattr(restore, "finish", announce_first)
    fakes, run, digest = setup("release")
    with pytest.raises(AssertionError, match="duplicate"):
        check(fakes, digest, "release", with_retries(run, fakes=fakes))
