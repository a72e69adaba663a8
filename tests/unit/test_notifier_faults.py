"""Regressions found by the notifier's fault-injection suite (tests/integration/test_notifier_faults.py), on the
in-memory fakes: an update queued for the follow-up whose flush could not be scheduled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.notify_fakes import NotifierFakes
from tests.unit.test_message import decision

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def _with_retries(run: Any, attempts: int = 3) -> Exception | None:
    last: Exception | None = None
    for _ in range(attempts):
        try:
            run()
            return None
        except Exception as exc:  # Lambda retries the event
            last = exc
    return last


def _failing_once(fakes: NotifierFakes) -> list[str]:
    schedule = fakes.follow_ups.schedule
    failed: list[str] = []

    def flaky(image: str, delay_seconds: float) -> None:
        if not failed:
            failed.append(image)
            raise RuntimeError("SQS SendMessage: ThrottlingException (injected)")
        schedule(image, delay_seconds)

    fakes.follow_ups.schedule = flaky  # type: ignore[method-assign]
    return failed


def test_an_update_whose_flush_could_not_be_scheduled_is_scheduled_by_the_retry_and_listed_once() -> None:
    """Regression: add_pending flagged the flush as scheduled, SendMessage failed, and the retry found the flag set:
    no flush was ever scheduled and the update was never sent. The retry also queued the update a second time."""
    fakes = NotifierFakes()
    notifier = fakes.notifier()
    notifier.now = lambda: NOW
    assert notifier.on_decision(decision(decision_id="block")) == "notified"
    failed = _failing_once(fakes)
    update = decision(action="updated", decision_id="update-1", fingerprint="f2", reasons=["new finding CVE-X"])

    assert _with_retries(lambda: notifier.on_decision(update)) is None

    assert failed, "the fault was not injected"
    flushes = [m for m, _ in fakes.follow_ups.messages if m["kind"] == "flush"]
    assert len(flushes) == 1, "the follow-up was never scheduled: the update is lost"
    notifier.now = lambda: NOW + timedelta(minutes=6)
    assert notifier.on_window_closed(flushes[0]["image"]) == "follow-up with 1 update(s)"
    assert len(fakes.sns.published) == 2  # the block, then one follow-up listing the update once


@pytest.mark.parametrize("attempts", [1, 3])
def test_a_flush_that_keeps_failing_leaves_the_update_queued(attempts: int) -> None:
    fakes = NotifierFakes()
    notifier = fakes.notifier()
    notifier.now = lambda: NOW
    notifier.on_decision(decision(decision_id="block"))
    fakes.follow_ups.schedule = lambda image, delay: (_ for _ in ()).throw(RuntimeError("down"))  # type: ignore[method-assign]
    update = decision(action="updated", decision_id="update-1", fingerprint="f2")
    assert _with_retries(lambda: notifier.on_decision(update), attempts) is not None
    image = next(iter(fakes.state.pending))
    assert fakes.state.scheduled[image] is False, "flagged as scheduled, yet nothing is on the queue"
