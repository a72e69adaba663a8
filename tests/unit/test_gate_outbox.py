"""The outbox: a decision that changes ECR owes its announcement from the moment it is written ahead. A run that
dies between acting and announcing (a timeout, an out-of-memory kill: no error handler runs) leaves the debt in the
record, and Lambda's retry, a minute or more later, sends it under the same decision_id, once."""

from __future__ import annotations

import pytest

from ecr_warden.domain.records import ImageStatus
from tests.events import CRITICAL, inspector_scan, push
from tests.fakes import FakeAwsError, Fakes

COUNTS = {"CRITICAL": 1, "TOTAL": 1}


class Killed(BaseException):
    """The Lambda runtime ending the process: nothing in the function gets to handle it."""


def _critical(fakes: Fakes) -> str:
    fakes.registry.create_repository()
    digest = fakes.registry.push("v1", "bad")
    fakes.enhanced.set(digest, CRITICAL)
    return digest


@pytest.mark.parametrize("step", ["add_tag", "remove_tags"])
def test_a_run_killed_before_announcing_is_announced_by_the_retry(step: str) -> None:
    fakes = Fakes()
    digest = _critical(fakes)
    event = inspector_scan(digest, ["v1"], COUNTS)
    fakes.registry.fail(step, Killed())
    with pytest.raises(Killed):
        fakes.gate().handle(event)
    assert fakes.store.require(digest).pending_announcement is not None, "the debt was written ahead"

    fakes.clock.advance(seconds=90)  # Lambda's first asynchronous retry
    outcome = fakes.gate().handle(event)

    assert outcome.action == "quarantined"
    assert fakes.announcer.actions() == ["quarantined"]
    assert fakes.registry.tags(digest) == [fakes.store.require(digest).quarantine_tag]
    assert fakes.store.require(digest).pending_announcement is None


def test_a_duplicate_while_the_first_run_is_at_work_leaves_the_announcement_to_it() -> None:
    fakes = Fakes()
    digest = _critical(fakes)
    event = inspector_scan(digest, ["v1"], COUNTS)
    seen: list[str] = []
    fakes.registry.before("remove_tags", lambda: seen.append(fakes.gate().handle(event).action.value))

    assert fakes.gate().handle(event).action == "quarantined"

    assert seen == ["noop"]
    assert fakes.announcer.actions() == ["quarantined"]
    assert fakes.store.require(digest).pending_announcement is None


def test_a_failure_to_clear_the_debt_is_retried_and_resent_under_the_same_id() -> None:
    fakes = Fakes()
    digest = _critical(fakes)
    event = inspector_scan(digest, ["v1"], COUNTS)
    original_save = fakes.store.save
    saves = {"n": 0}

    def failing_second_save(*args: object, **kwargs: object) -> object:
        saves["n"] += 1
        if saves["n"] == 2:  # the clear, after the announcement went out
            raise FakeAwsError("InternalServerError", "injected 500")
        return original_save(*args, **kwargs)  # type: ignore[arg-type]

    fakes.store.save = failing_second_save  # type: ignore[method-assign]
    with pytest.raises(FakeAwsError):
        fakes.gate().handle(event)
    fakes.clock.advance(seconds=90)
    fakes.gate().handle(event)

    first, again = fakes.announcer.published
    assert (first.action, again.action) == ("quarantined", "quarantined")
    assert first.decision_id == again.decision_id, "consumers deduplicate on it: one message for people"
    record = fakes.store.require(digest)
    assert record.status is ImageStatus.QUARANTINED
    assert record.pending_announcement is None


def test_a_push_during_an_unpaid_debt_never_replaces_it() -> None:
    fakes = Fakes()
    digest = _critical(fakes)
    event = inspector_scan(digest, ["v1"], COUNTS)
    fakes.announcer.fail("publish", Killed())
    with pytest.raises(Killed):
        fakes.gate().handle(event)
    debt = fakes.store.require(digest).pending_announcement
    fakes.registry.push("v1-hotfix", "bad")  # a new tag onto the quarantined image, before the retry
    fakes.gate().handle(push(digest, "v1-hotfix"))
    assert fakes.store.require(digest).pending_announcement == debt

    fakes.clock.advance(seconds=90)
    fakes.gate().handle(event)
    assert "quarantined" in fakes.announcer.actions()
    assert fakes.store.require(digest).pending_announcement is None
