"""A recorded tag of a blocked image pushed onto another image is announced exactly once, with both digests, however
its events arrive (late, twice, out of order, failing half-way, concurrently with another tag's)."""

from __future__ import annotations

import pytest

from ecr_warden.actions import find
from ecr_warden.contracts.decision import Action
from tests.events import CRITICAL, inspector_scan, push
from tests.fakes import REPOSITORY, Fakes


def _quarantined(fakes: Fakes, *tags: str, immutable: bool = True) -> str:
    fakes.registry.create_repository(immutable=immutable)
    digest = ""
    for tag in tags:
        digest = fakes.registry.push(tag, "bad")
    fakes.enhanced.set(digest, list(CRITICAL))
    assert fakes.gate().handle(inspector_scan(digest, list(tags), {"CRITICAL": 1})).action == "quarantined"
    fakes.announcer.clear()
    return digest


def _reuses(fakes: Fakes) -> list[tuple[str, str | None]]:
    return [(d.tags[0], d.tag_now_on) for d in fakes.announcer.published if d.action is Action.TAG_REUSED]


# -- item 4: a late or repeated push event never announces a stale digest ------------------------------------------


def test_a_redelivered_push_of_a_digest_the_tag_left_is_not_announced_again() -> None:
    fakes = Fakes()
    _quarantined(fakes, "latest", immutable=False)
    x = fakes.registry.push("latest", "x")
    fakes.gate().handle(push(x, "latest"))
    y = fakes.registry.push("latest", "y")
    fakes.gate().handle(push(y, "latest"))

    assert fakes.gate().handle(push(x, "latest")).action is Action.NOOP  # X's event again: latest is on Y

    assert _reuses(fakes) == [("latest", x), ("latest", y)]


def test_push_events_out_of_order_announce_only_where_the_tag_is() -> None:
    fakes = Fakes()
    _quarantined(fakes, "latest", immutable=False)
    x = fakes.registry.push("latest", "x")
    y = fakes.registry.push("latest", "y")

    fakes.gate().handle(push(y, "latest"))
    fakes.gate().handle(push(x, "latest"))  # late: latest left X before its event arrived

    assert _reuses(fakes) == [("latest", y)]


# -- item 3: exactly once, with both digests -----------------------------------------------------------------------


def test_two_tags_reused_at_once_are_both_announced() -> None:
    fakes = Fakes()
    quarantined = _quarantined(fakes, "v1.3.0", "latest")
    other = fakes.registry.push("v1.3.0", "other")
    fakes.registry.push("latest", "other")
    # the other invocation (tag latest) writes the quarantined image's record between our read and our write
    fakes.store.before("save", lambda: fakes.gate().handle(push(other, "latest")))

    outcome = fakes.gate().handle(push(other, "v1.3.0"))

    assert outcome.action is Action.TAG_REUSED
    assert sorted(_reuses(fakes)) == [("latest", other), ("v1.3.0", other)]
    history = [e.reason for e in fakes.store.require(quarantined).history if e.action == "tag_reused"]
    assert len(history) == 2


def test_a_failed_announcement_is_sent_by_the_retry_with_both_digests() -> None:
    fakes = Fakes()
    quarantined = _quarantined(fakes, "v1.3.0")
    other = fakes.registry.push("v1.3.0", "other")
    fakes.announcer.reject(1)
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the publisher raised: Lambda retries the event
        fakes.gate().handle(push(other, "v1.3.0"))

    outcome = fakes.gate().handle(push(other, "v1.3.0"))  # the retry

    assert outcome.action is Action.TAG_REUSED
    [announced] = [d for d in fakes.announcer.published if d.action is Action.TAG_REUSED]
    assert (announced.digest, announced.tags, announced.tag_now_on) == (quarantined, ["v1.3.0"], other)
    record = fakes.store.require(quarantined)
    assert record.pending_announcement is None
    assert [e.action for e in record.history].count("tag_reused") == 1
    assert fakes.gate().handle(push(other, "v1.3.0")).action is Action.NOOP  # announced: never again


def test_a_run_that_stopped_after_saving_announces_again_as_the_same_decision() -> None:
    fakes = Fakes()
    _quarantined(fakes, "v1.3.0")
    other = fakes.registry.push("v1.3.0", "other")
    fakes.store.fail("confirm_tag_reuse")  # saved and published, then the confirmation failed
    with pytest.raises(Exception):  # noqa: B017, PT011
        fakes.gate().handle(push(other, "v1.3.0"))

    fakes.gate().handle(push(other, "v1.3.0"))

    ids = {d.decision_id for d in fakes.announcer.published if d.action is Action.TAG_REUSED}
    assert len(ids) == 1  # consumers deduplicate on it


# -- item 6: a release that took a tag back from a concurrent push -------------------------------------------------


def test_a_push_the_release_moved_the_tag_away_from_is_announced() -> None:
    fakes = Fakes()
    released = _quarantined(fakes, "v1.3.0", immutable=False)
    pushed: dict[str, str] = {}
    fakes.registry.before("add_tag", lambda: pushed.setdefault("b", fakes.registry.push("v1.3.0", "fix")))
    request = {"repository": REPOSITORY, "digest": released, "reason": "ok", "by": "alice"}
    assert find("release").invoke(request, fakes.gate().actor).action is Action.RELEASED
    assert fakes.registry.tagged("v1.3.0") == released  # ECR has no conditional PutImage: the release won

    outcome = fakes.gate().handle(push(pushed["b"], "v1.3.0"))

    assert outcome.action is Action.TAG_REUSED
    assert pushed["b"] in outcome.reason
    assert released in outcome.reason
    announced = fakes.announcer.last()
    assert (announced.digest, announced.tags, announced.tag_now_on) == (released, ["v1.3.0"], released)


def test_a_push_after_a_release_is_not_news() -> None:
    fakes = Fakes()
    released = _quarantined(fakes, "v2", immutable=False)
    request = {"repository": REPOSITORY, "digest": released, "reason": "ok", "by": "alice"}
    find("release").invoke(request, fakes.gate().actor)
    fakes.announcer.clear()
    newer = fakes.registry.push("v2", "newer")

    assert fakes.gate().handle(push(newer, "v2")).action is Action.NOOP
    assert fakes.announcer.published == []


# -- item 5: an image that takes the tag and is blocked itself does not erase the first claim ----------------------


@pytest.mark.xfail(
    strict=True,
    reason="known gap: one claim per tag; the taker's own quarantine claims the tag and the first holder's claim "
    "is replaced before its reuse was announced (needs a claim per (tag, holder) in the audit table)",
)
def test_a_blocked_image_that_took_the_tag_still_announces_the_first_holders_reuse() -> None:
    _a_blocked_image_that_took_the_tag(Fakes())


def _a_blocked_image_that_took_the_tag(fakes: Fakes) -> None:
    first = _quarantined(fakes, "v1.3.0")
    taker = fakes.registry.push("v1.3.0", "taker-also-bad")
    fakes.enhanced.set(taker, list(CRITICAL))
    assert fakes.gate().handle(inspector_scan(taker, ["v1.3.0"], {"CRITICAL": 1})).action == "quarantined"

    fakes.gate().handle(push(taker, "v1.3.0"))  # its push event, handled after its scan
    fakes.gate().handle(push(taker, "v1.3.0"))  # and delivered again

    assert [(d.digest, d.tags, d.tag_now_on) for d in fakes.announcer.published if d.action is Action.TAG_REUSED] == [
        (first, ["v1.3.0"], taker)
    ]


def test_the_same_push_delivered_twice_at_once_is_one_reuse_under_one_decision() -> None:
    """Both deliveries read the claim before either confirms it: both may announce, but as one decision (consumers
    deduplicate on its id) and with one entry in the quarantined image's history."""
    fakes = Fakes()
    quarantined = _quarantined(fakes, "v1.3.0")
    other = fakes.registry.push("v1.3.0", "other")
    second: dict[str, object] = {}
    fakes.store.before("save", lambda: second.setdefault("outcome", fakes.gate().handle(push(other, "v1.3.0"))))

    first = fakes.gate().handle(push(other, "v1.3.0"))

    assert {first.action, second["outcome"].action} <= {Action.TAG_REUSED, Action.NOOP}  # type: ignore[attr-defined]
    ids = {d.decision_id for d in fakes.announcer.published if d.action is Action.TAG_REUSED}
    assert len(ids) == 1
    history = fakes.store.require(quarantined).history
    assert [e.action for e in history].count("tag_reused") == 1
    assert fakes.gate().handle(push(other, "v1.3.0")).action is Action.NOOP  # confirmed: a third delivery is quiet
