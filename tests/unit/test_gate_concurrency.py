"""Duplicate deliveries that overlap: EventBridge delivers at least once, and two invocations of the same event
can run at the same time. One action, one announcement, and never a spurious retag_blocked."""

from __future__ import annotations

from tests.events import CRITICAL, inspector_scan, push
from tests.fakes import Fakes


def _critical(fakes: Fakes, tag: str = "v1") -> str:
    fakes.registry.create_repository()
    digest = fakes.registry.push(tag, "bad")
    fakes.enhanced.set(digest, CRITICAL)
    return digest


def test_a_duplicate_that_runs_while_the_quarantine_is_half_done_announces_nothing() -> None:
    fakes = Fakes()
    digest = _critical(fakes)
    event = inspector_scan(digest, ["v1"], {"CRITICAL": 1, "HIGH": 1, "TOTAL": 2})
    duplicate: list[str] = []
    # the second delivery runs after the first wrote its record, before it removed the deployable tag
    fakes.registry.before("remove_tags", lambda: duplicate.append(fakes.gate().handle(event).action.value))

    first = fakes.gate().handle(event)

    assert first.action == "quarantined"
    assert duplicate == ["noop"]  # it finished the removal quietly: the first delivery announces
    assert fakes.announcer.actions() == ["quarantined"]
    assert fakes.registry.tags(digest) == ["quarantined-" + digest[7:19]]


def test_a_re_push_of_a_recorded_tag_is_still_a_blocked_re_tag() -> None:
    fakes = Fakes()
    digest = _critical(fakes, "v1")
    fakes.gate().handle(inspector_scan(digest, ["v1"], {"CRITICAL": 1, "HIGH": 1, "TOTAL": 2}))
    fakes.registry.push("v1", "bad")  # the same image pushed again under its old tag (a MUTABLE-style re-tag)
    assert fakes.gate().handle(push(digest, "v1")).action == "retag_blocked"
    assert fakes.announcer.actions() == ["quarantined", "retag_blocked"]


def test_five_sequential_duplicates_act_and_announce_once() -> None:
    fakes = Fakes()
    digest = _critical(fakes)
    event = inspector_scan(digest, ["v1"], {"CRITICAL": 1, "HIGH": 1, "TOTAL": 2})
    actions = [fakes.gate().handle(event).action.value for _ in range(5)]
    assert actions == ["quarantined", "noop", "noop", "noop", "noop"]
    assert fakes.announcer.actions() == ["quarantined"]
