"""Findings that lag their scan, when events arrive late, twice or out of order, and AWS is slow or partial.

The rule: an image whose scanner counted findings at a threshold that are not listed yet never passes; the gate
re-checks through its delayed-check queue and, when the window closes, decides by the counts (or alerts). Every
case is recorded and announced exactly once, whatever the order of the events.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecr_warden.contracts.aws_events import AwsEvent
from ecr_warden.contracts.checks import FindingsCheck
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.records import ImageRecord, ImageStatus
from ecr_warden.gate.context import Outcome
from ecr_warden.policy.model import Policy
from tests.fakes import NOW, REPOSITORY, Fakes
from tests.unit.test_gate_with_fakes import CRITICAL, basic_scan, inspector_scan, policy, push, q
from tests.unit.test_lag_and_unscanned import _pushed

LAGGING = {"CRITICAL": 2, "HIGH": 0, "MEDIUM": 0, "TOTAL": 2}
CLEAN = {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0, "TOTAL": 0}
T1 = datetime(2026, 11, 1, 11, 50, tzinfo=UTC)  # scan times, before the fake clock's NOW
T2 = T1 + timedelta(minutes=2)
T3 = T2 + timedelta(minutes=2)
X = Finding(id="CVE-2026-1111", severity="CRITICAL")
ALERT = {"on_timeout": "alert"}


def _at(event: AwsEvent, moment: datetime) -> AwsEvent:
    """The event as EventBridge stamped it at `moment` (the scan's completion)."""
    return event.model_copy(update={"time": moment})


def _deliver(fakes: Fakes, policy_: Policy | None = None) -> Outcome:
    check = fakes.checks.take()
    fakes.clock.now = max(fakes.clock.now, check.not_before)
    return fakes.gate(policy_).on_check(check)


def _deliver_all(fakes: Fakes, policy_: Policy | None = None) -> list[Outcome]:
    outcomes = []
    while fakes.checks.scheduled:
        outcomes.append(_deliver(fakes, policy_))
    return outcomes


# -- 1. a clean result of an older scan, delivered late ---------------------------------------------------------


def test_an_older_clean_result_does_not_end_the_wait_for_a_newer_scan(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    fakes.registry.set_scan(digest, [])
    newer = fakes.gate().handle(_at(basic_scan(digest, ["v1.3.0"], {"CRITICAL": 1}), T2))
    assert newer.action == "findings_lagging"

    late = fakes.gate().handle(_at(basic_scan(digest, ["v1.3.0"], {}), T1))

    assert late.action == "noop"
    record = fakes.store.require(digest)
    assert record.status is ImageStatus.PENDING
    assert record.awaiting_findings == {"CRITICAL": 1}
    fakes.registry.set_scan(digest, [CRITICAL[0]])  # the newer scan's finding is listed now
    assert [o.action for o in _deliver_all(fakes)] == ["quarantined"]
    assert fakes.registry.tags(digest) == [q(digest)]
    assert fakes.announcer.actions() == ["quarantined"]


def test_a_newer_clean_result_ends_the_wait(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    fakes.gate().handle(_at(inspector_scan(digest, ["v1.3.0"], LAGGING), T1))

    assert fakes.gate().handle(_at(inspector_scan(digest, ["v1.3.0"], CLEAN), T2)).action == "passed"

    assert fakes.store.require(digest).awaiting_findings is None
    assert [o.action for o in _deliver_all(fakes)] == ["noop"]
    assert fakes.announcer.actions() == ["passed"]


# -- 2. a re-check or a scan event of an earlier scan -----------------------------------------------------------


def test_a_stale_recheck_of_an_earlier_scan_neither_passes_nor_ends_the_newer_wait(fakes: Fakes) -> None:
    accepted = policy(
        exemptions=[{"cve": X.id, "expires": "2030-01-01T00:00:00Z", "reason": "accepted", "approver": "sec"}]
    )
    digest = _pushed(fakes)
    fakes.registry.set_scan(digest, [])
    fakes.gate(accepted).handle(_at(basic_scan(digest, ["v1.3.0"], {"CRITICAL": 1}), T1))
    fakes.clock.advance(seconds=30)
    assert fakes.gate(accepted).handle(_at(basic_scan(digest, ["v1.3.0"], {"CRITICAL": 2}), T2)).action == (
        "findings_lagging"
    )
    fakes.registry.set_scan(digest, [X])  # the rescan's listing is partial: the second CRITICAL is missing

    outcomes = _deliver_all(fakes, accepted)

    assert "passed" not in [o.action for o in outcomes]
    assert outcomes[-1].action == "quarantined"
    assert fakes.announcer.actions() == ["quarantined"]
    assert fakes.announcer.last().reasons == ["scanner reported 2 CRITICAL; findings not yet listed"]


def test_an_older_lagging_scan_delivered_late_does_not_block_a_newer_clean_result(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    assert fakes.gate().handle(_at(inspector_scan(digest, ["v1.3.0"], CLEAN), T2)).action == "passed"

    late = fakes.gate().handle(_at(inspector_scan(digest, ["v1.3.0"], LAGGING), T1))

    assert late.action == "noop"
    assert fakes.checks.scheduled == []
    assert fakes.store.require(digest).status is ImageStatus.PASSED
    assert fakes.registry.tags(digest) == ["v1.3.0"]


# -- 3. the first re-check could not be queued ------------------------------------------------------------------


def test_a_wait_whose_first_recheck_could_not_be_queued_is_queued_by_the_retry(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    event = inspector_scan(digest, ["v1.3.0"], LAGGING)
    fakes.checks.fail("schedule")
    with pytest.raises(Exception, match="schedule failed"):
        fakes.gate().handle(event)

    assert fakes.gate().handle(event).action == "findings_lagging"  # Lambda's retry of the same event

    assert len(fakes.checks.scheduled) == 1
    assert [o.action for o in _deliver_all(fakes)][-1] == "quarantined"


# -- 4. an announcement that failed at the end of the wait ------------------------------------------------------


@pytest.mark.parametrize(("lag_policy", "announced"), [(ALERT, "findings_missing"), ({}, "quarantined")])
def test_the_announcement_that_failed_at_the_end_of_the_wait_is_sent_by_the_retry(
    fakes: Fakes, lag_policy: dict[str, Any], announced: str
) -> None:
    timing = policy(findings_lag={"window_seconds": 60, "first_recheck_seconds": 60, **lag_policy})
    digest = _pushed(fakes)
    fakes.gate(timing).handle(inspector_scan(digest, ["v1.3.0"], LAGGING))
    check = fakes.checks.take()
    fakes.clock.now = check.not_before
    fakes.announcer.reject(1)
    with pytest.raises(Exception, match="rejected"):
        fakes.gate(timing).on_check(check)

    fakes.clock.advance(minutes=2)  # SQS delivers the message again
    retried = fakes.gate(timing).on_check(check)

    assert retried.action == announced
    assert fakes.announcer.actions() == [announced]
    assert fakes.store.require(digest).pending_announcement is None
    assert fakes.gate(timing).on_check(check).action == "noop"  # and only once
    assert fakes.announcer.actions() == [announced]


# -- 5. alert mode: the record says a scan result arrived -------------------------------------------------------


def test_alert_mode_records_that_a_scan_result_arrived(fakes: Fakes) -> None:
    alert = policy(findings_lag=ALERT)
    digest = _pushed(fakes)
    fakes.gate(alert).handle(_at(inspector_scan(digest, ["v1.3.0"], LAGGING), T1))
    assert [o.action for o in _deliver_all(fakes, alert)][-1] == "findings_missing"

    record = fakes.store.require(digest)
    assert record.status is ImageStatus.PENDING
    assert record.awaiting_findings is None
    assert record.scanned_at == T1  # what the unscanned check reads: a scan result arrived


def test_alert_mode_leaves_no_scanned_image_to_the_unscanned_check(fakes: Fakes) -> None:
    alert = policy(findings_lag=ALERT, unscanned="block")
    digest = _pushed(fakes)
    fakes.gate(alert).handle(push(digest, "v1.3.0"))  # queues the unscanned check for push + 30 min
    [unscanned_check] = fakes.checks.scheduled
    fakes.checks.scheduled.clear()
    fakes.gate(alert).handle(inspector_scan(digest, ["v1.3.0"], LAGGING))
    assert [o.action for o in _deliver_all(fakes, alert)][-1] == "findings_missing"

    fakes.clock.advance(minutes=30)
    outcome = fakes.gate(alert).on_check(unscanned_check)

    assert outcome.action == "noop"  # a scan result arrived: not unscanned
    assert fakes.announcer.actions() == ["findings_missing"]
    assert fakes.registry.tags(digest) == ["v1.3.0"]


def test_a_clean_result_records_its_scan_time(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    fakes.gate().handle(_at(inspector_scan(digest, ["v1.3.0"], CLEAN), T1))
    assert fakes.store.require(digest).scanned_at == T1


def test_a_record_stored_before_scanned_at_existed_still_loads() -> None:
    old = {"repository": REPOSITORY, "digest": "sha256:" + "a" * 64, "status": "PENDING", "updated_at": NOW.isoformat()}
    assert ImageRecord.model_validate(old).scanned_at is None


def test_a_check_queued_before_scanned_at_existed_still_parses() -> None:
    from ecr_warden.contracts.checks import parse_check

    raw = {"kind": "findings", "account": "123456789012", "region": "us-east-1", "repository": REPOSITORY,
           "digest": "sha256:" + "a" * 64, "not_before": NOW.isoformat(), "counts": {"CRITICAL": 1},
           "basic": False, "first_seen": NOW.isoformat()}  # fmt: skip
    check = parse_check(raw)
    assert isinstance(check, FindingsCheck)
    assert check.scanned_at is None


# -- 8. a replayed scan event after an alert --------------------------------------------------------------------


def test_a_replayed_scan_event_after_the_alert_announces_nothing_more(fakes: Fakes) -> None:
    alert = policy(findings_lag=ALERT)
    digest = _pushed(fakes)
    event = inspector_scan(digest, ["v1.3.0"], LAGGING)
    fakes.gate(alert).handle(event)
    _deliver_all(fakes, alert)
    assert fakes.announcer.actions() == ["findings_missing"]
    fakes.clock.advance(minutes=30)

    assert fakes.gate(alert).handle(event).action == "noop"

    _deliver_all(fakes, alert)
    assert fakes.announcer.actions() == ["findings_missing"]
    assert fakes.store.history(digest).count("findings_missing") == 1


def test_a_newer_scan_after_the_alert_is_a_new_case(fakes: Fakes) -> None:
    alert = policy(findings_lag=ALERT)
    digest = _pushed(fakes)
    fakes.gate(alert).handle(_at(inspector_scan(digest, ["v1.3.0"], LAGGING), T1))
    _deliver_all(fakes, alert)

    assert fakes.gate(alert).handle(_at(inspector_scan(digest, ["v1.3.0"], LAGGING), T2)).action == ("findings_lagging")


# -- 9. missing counts are not zero -----------------------------------------------------------------------------


def test_a_total_above_the_listed_findings_with_the_threshold_uncounted_is_lag(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    outcome = fakes.gate().handle(inspector_scan(digest, ["v1.3.0"], {"HIGH": 0, "MEDIUM": 0, "TOTAL": 2}))

    assert outcome.action == "findings_lagging"
    assert fakes.store.require(digest).status is ImageStatus.PENDING
    assert len(fakes.checks.scheduled) == 1
    assert [o.action for o in _deliver_all(fakes)][-1] == "quarantined"  # fail closed
    assert "2 findings in all" in fakes.announcer.last().reasons[0]


def test_no_counts_at_all_and_nothing_listed_waits_then_decides_by_the_findings(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    outcome = fakes.gate().handle(inspector_scan(digest, ["v1.3.0"], None))

    assert outcome.action == "findings_lagging"
    assert fakes.store.require(digest).status is ImageStatus.PENDING
    fakes.enhanced.set(digest, [CRITICAL[0]])  # listed meanwhile
    assert [o.action for o in _deliver_all(fakes)][-1] == "quarantined"


def test_no_counts_and_nothing_ever_listed_is_decided_by_the_listing_when_the_window_closes(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    fakes.gate().handle(inspector_scan(digest, ["v1.3.0"], None))

    assert [o.action for o in _deliver_all(fakes)][-1] == "passed"  # no count ever said otherwise
    assert fakes.store.require(digest).awaiting_findings is None


def test_a_total_of_zero_proves_there_is_nothing_to_wait_for(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    assert fakes.gate().handle(inspector_scan(digest, ["v1.3.0"], {"HIGH": 0, "TOTAL": 0})).action == "passed"
    assert fakes.checks.scheduled == []


# -- 11. alert mode and a deleted image -------------------------------------------------------------------------


def test_alert_mode_does_not_announce_missing_findings_of_a_deleted_image(fakes: Fakes) -> None:
    alert = policy(findings_lag=ALERT)
    digest = _pushed(fakes)
    fakes.gate(alert).handle(inspector_scan(digest, ["v1.3.0"], LAGGING))
    fakes.registry.delete_image(digest)

    outcomes = _deliver_all(fakes, alert)

    assert outcomes[-1].action == "skipped"
    assert "findings_missing" not in fakes.announcer.actions()
    assert fakes.store.require(digest).status is ImageStatus.SKIPPED


# -- 12. the fake store is the real one -------------------------------------------------------------------------


def test_a_late_clean_scan_after_an_unscanned_announcement_takes_the_one_write_path(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    fakes.store.put(
        ImageRecord(repository=REPOSITORY, digest=digest, status=ImageStatus.UNSCANNED, updated_at=NOW, version=1)
    )
    fakes.reset_calls()

    assert fakes.gate().handle(inspector_scan(digest, ["v1.3.0"], CLEAN)).action == "passed"

    assert dict(fakes.store.calls) == {"record_pass": 1}
