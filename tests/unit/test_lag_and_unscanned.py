"""Fail closed when the scanner counted what it does not list yet; notice images that never get scanned.

Both wait through the gate's delayed-check queue (FakeChecks here), never by sleeping; the clock is moved by
hand and the queued checks are handed back to the gate as SQS would deliver them.
"""

from __future__ import annotations

from datetime import timedelta

from ecr_warden.contracts.checks import FindingsCheck, UnscannedCheck
from ecr_warden.domain.records import ImageStatus
from tests.fakes import Fakes
from tests.unit.test_gate_with_fakes import (
    CRITICAL,
    CRITICAL_COUNTS,
    basic_scan,
    inspector_scan,
    policy,
    push,
    q,
)

LAGGING = {"CRITICAL": 2, "HIGH": 0, "MEDIUM": 0, "TOTAL": 2}


def _pushed(fakes: Fakes, tag: str = "v1.3.0") -> str:
    fakes.registry.create_repository()
    return fakes.registry.push(tag, "lagging")


def _deliver_due(fakes: Fakes, policy_: object = None) -> str:
    """Move the clock to the next queued check and hand it to a new invocation; the outcome's action."""
    check = fakes.checks.take()
    fakes.clock.now = max(fakes.clock.now, check.not_before)
    return fakes.gate(policy_).on_check(check).action.value  # type: ignore[arg-type]


# -- findings that lag their scan ------------------------------------------------------------------------------


def test_counted_critical_findings_that_are_not_listed_never_pass(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    outcome = fakes.gate().handle(inspector_scan(digest, ["v1.3.0"], LAGGING))

    assert outcome.action == "findings_lagging"
    assert "scanner reported 2 CRITICAL; findings not listed yet: re-check in 60 s" in outcome.reason
    record = fakes.store.require(digest)
    assert record.status is ImageStatus.PENDING  # never PASSED
    assert record.awaiting_findings == {"CRITICAL": 2, "HIGH": 0, "MEDIUM": 0}  # what the scanner counted
    [check] = fakes.checks.scheduled
    assert isinstance(check, FindingsCheck)
    assert check.not_before - fakes.clock.now == timedelta(seconds=60)
    assert fakes.announcer.published == []  # nothing to say yet
    assert fakes.registry.tags(digest) == ["v1.3.0"]


def test_findings_listed_by_the_recheck_are_decided_normally(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    fakes.gate().handle(inspector_scan(digest, ["v1.3.0"], LAGGING))
    fakes.enhanced.set(digest, [CRITICAL[0], CRITICAL[0].model_copy(update={"id": "CVE-2026-0002"})])

    assert _deliver_due(fakes) == "quarantined"
    assert fakes.registry.tags(digest) == [q(digest)]
    assert fakes.announcer.actions() == ["quarantined"]
    assert fakes.store.require(digest).awaiting_findings is None


def test_findings_still_missing_when_the_window_closes_block_by_the_counts(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    fakes.gate().handle(inspector_scan(digest, ["v1.3.0"], LAGGING))
    delays = []
    while True:
        before = fakes.clock.now
        action = _deliver_due(fakes)
        delays.append(int((fakes.clock.now - before).total_seconds()))
        if action != "findings_lagging":
            break
    assert action == "quarantined"
    assert delays == [60, 120, 240, 180]  # doubling, the last one cut to the 10-minute window
    decision = fakes.announcer.last()
    assert decision.reasons == ["scanner reported 2 CRITICAL; findings not yet listed"]
    assert decision.severity_counts == {"CRITICAL": 2, "HIGH": 0, "MEDIUM": 0}
    assert fakes.registry.tags(digest) == [q(digest)]
    assert fakes.checks.scheduled == []  # the chain ends


def test_the_policy_can_alert_instead_of_blocking(fakes: Fakes) -> None:
    alert = policy(findings_lag={"window_seconds": 60, "first_recheck_seconds": 60, "on_timeout": "alert"})
    digest = _pushed(fakes)
    fakes.gate(alert).handle(inspector_scan(digest, ["v1.3.0"], LAGGING))

    assert _deliver_due(fakes, alert) == "findings_missing"
    assert fakes.announcer.actions() == ["findings_missing"]
    assert fakes.registry.tags(digest) == ["v1.3.0"]  # left as it is, as the policy says
    assert fakes.store.require(digest).status is ImageStatus.PENDING  # and still never PASSED


def test_a_duplicate_scan_event_starts_no_second_chain(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    event = inspector_scan(digest, ["v1.3.0"], LAGGING)
    fakes.gate().handle(event)
    assert fakes.gate().handle(event).action == "noop"
    assert len(fakes.checks.scheduled) == 1


def test_a_check_made_stale_by_a_later_decision_does_nothing(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    fakes.gate().handle(inspector_scan(digest, ["v1.3.0"], LAGGING))
    fakes.enhanced.set(digest, CRITICAL)
    fakes.gate().handle(inspector_scan(digest, ["v1.3.0"], CRITICAL_COUNTS))  # a rescan, fully listed
    assert _deliver_due(fakes) == "noop"
    assert fakes.announcer.actions() == ["quarantined"]


def test_a_blocked_image_is_not_released_by_a_rescan_whose_findings_lag(fakes: Fakes) -> None:
    auto = policy(auto_release_on_close=True)
    digest = _pushed(fakes)
    fakes.enhanced.set(digest, CRITICAL)
    assert fakes.gate(auto).handle(inspector_scan(digest, ["v1.3.0"], CRITICAL_COUNTS)).action == "quarantined"
    fakes.enhanced.set(digest, [])  # a rescan's findings are not listed yet
    outcome = fakes.gate(auto).handle(inspector_scan(digest, [], LAGGING))
    assert outcome.action == "findings_lagging"
    assert fakes.store.require(digest).status is ImageStatus.QUARANTINED
    assert fakes.registry.tags(digest) == [q(digest)]


def test_basic_scanning_counts_are_held_to_the_same_rule(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    fakes.registry.set_scan(digest, [])
    assert fakes.gate().handle(basic_scan(digest, ["v1.3.0"], {"CRITICAL": 1})).action == "findings_lagging"
    check = fakes.checks.scheduled[0]
    assert isinstance(check, FindingsCheck)
    assert check.basic


def test_a_check_delivered_early_is_sent_on(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    fakes.gate().handle(inspector_scan(digest, ["v1.3.0"], LAGGING))
    early = fakes.checks.take()
    assert fakes.gate().on_check(early).reason.startswith("check due at")
    assert fakes.checks.scheduled == [early]


# -- images never scanned --------------------------------------------------------------------------------------


def test_a_push_expects_a_scan_within_the_window(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    event = push(digest, "v1.3.0")
    fakes.gate().handle(event)
    [check] = fakes.checks.scheduled
    assert isinstance(check, UnscannedCheck)
    assert check.not_before - check.pushed_at == timedelta(minutes=30)
    assert check.pushed_at == event.time


def test_an_image_with_no_scan_result_is_announced_with_the_reason(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    fakes.gate().handle(push(digest, "v1.3.0"))
    fakes.enhanced.covered[("ses-base/api-server", digest)] = ("INACTIVE", "UNSUPPORTED_OS")

    assert _deliver_due(fakes) == "unscanned"
    decision = fakes.announcer.last()
    assert decision.reasons == ["no scan result 30 min after the push; Inspector: INACTIVE (UNSUPPORTED_OS)"]
    assert fakes.store.require(digest).status is ImageStatus.UNSCANNED
    assert fakes.registry.tags(digest) == ["v1.3.0"]
    assert _deliver_due_again_is_noop(fakes, digest)


def _deliver_due_again_is_noop(fakes: Fakes, digest: str) -> bool:
    fakes.gate().handle(push(digest, "v1.3.0"))  # the same push delivered again, much later
    return _deliver_due(fakes) == "noop" and fakes.announcer.actions() == ["unscanned"]


def test_unscanned_block_quarantines_an_image_never_scanned(fakes: Fakes) -> None:
    strict = policy(unscanned="block")
    digest = _pushed(fakes)
    fakes.gate(strict).handle(push(digest, "v1.3.0"))
    assert _deliver_due(fakes, strict) == "quarantined"
    assert "neither Inspector nor ECR reports a scan of it" in fakes.announcer.last().reasons[0]
    assert fakes.registry.tags(digest) == [q(digest)]


def test_an_image_scanned_in_time_is_left_alone(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    fakes.gate().handle(push(digest, "v1.3.0"))
    fakes.gate().handle(inspector_scan(digest, ["v1.3.0"], {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0}))
    fakes.announcer.clear()
    assert _deliver_due(fakes) == "noop"
    assert fakes.announcer.published == []
