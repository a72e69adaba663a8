"""Every decision meant for people gets a message: a new action that nobody added to the notifier would be
announced on the bus and then silently dropped ("no message for ...")."""

from __future__ import annotations

from ecr_warden.contracts.decision import Action
from ecr_warden.notify.message import _HEADLINES
from ecr_warden.notify.service import FOLLOW_UP, IMMEDIATE

# Announced (or recorded) without a message, each for a reason.
SILENT = {
    Action.NOOP: "nothing happened",
    Action.MAPPED: "bookkeeping: an index's platform images were remembered",
    Action.RELEASE_CONFLICTS: "history only; the release_incomplete message says it",
    Action.PASSED: "clean images are the normal case; the audit table and the bus have them",
    Action.FINDINGS_LAGGING: "a re-check is scheduled; its outcome is messaged (blocked or findings_missing)",
    Action.KEPT_RELEASED: "an admin released it; the late scan changes nothing",
    Action.SKIPPED: "the image or repository is gone",
    Action.WOULD_REMOVE_TAG: "audit mode's shadow of retag_blocked on an image audit already reported",
}


def test_every_action_is_messaged_or_silent_for_a_stated_reason() -> None:
    messaged = IMMEDIATE | FOLLOW_UP
    assert messaged.isdisjoint(SILENT)
    assert set(Action) == messaged | set(SILENT), f"decide for: {set(Action) - messaged - set(SILENT)}"


def test_every_messaged_action_has_a_headline() -> None:
    assert not (IMMEDIATE | FOLLOW_UP) - set(_HEADLINES)
