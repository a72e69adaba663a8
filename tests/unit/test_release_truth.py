"""A release says exactly what ECR now looks like: never `released` for tags it did not put back, never deleting
the image it releases (removing an image's last tag deletes it)."""

from __future__ import annotations

import json

import pytest

from ecr_warden.actions import find
from ecr_warden.contracts.decision import Action
from ecr_warden.gate.context import Outcome
from ecr_warden.gate.effects import PartialActionError
from ecr_warden.policy.load import parse_policy
from ecr_warden.policy.model import Policy
from tests.events import CRITICAL, inspector_scan
from tests.fakes import REPOSITORY, Fakes

FLAG_HIGH = parse_policy(json.dumps({"rules": [{"name": "r", "block_at": "CRITICAL", "tag_at": "HIGH"}]}))
ARCHIVE = parse_policy(json.dumps({"rules": [{"name": "r", "block_at": "CRITICAL", "block_method": "archive"}]}))


def _release(fakes: Fakes, digest: str, policy: Policy | None = None) -> Outcome:
    request = {"repository": REPOSITORY, "digest": digest, "reason": "accepted", "by": "alice"}
    return find("release").invoke(request, fakes.gate(policy).actor)


def _flagged() -> tuple[Fakes, str]:
    fakes = Fakes()
    fakes.registry.create_repository(immutable=False)
    flagged = fakes.registry.push("latest", "bad")
    fakes.enhanced.set(flagged, [CRITICAL[1]])  # HIGH: flagged with the marker tag
    scan = inspector_scan(flagged, ["latest"], {"HIGH": 1, "CRITICAL": 0})
    assert fakes.gate(FLAG_HIGH).handle(scan).action == "tagged"
    return fakes, flagged


def _flagged_then_latest_moved() -> tuple[Fakes, str, str]:
    fakes, flagged = _flagged()
    newer = fakes.registry.push("latest", "newer")  # CI moves latest: the marker is the image's last tag
    return fakes, flagged, newer


def test_releasing_a_flagged_image_whose_only_tag_is_the_marker_keeps_the_image() -> None:
    fakes, flagged, newer = _flagged_then_latest_moved()
    marker = fakes.store.require(flagged).marker_tag

    outcome = _release(fakes, flagged, FLAG_HIGH)

    assert fakes.registry.exists(flagged)
    assert fakes.registry.tags(flagged) == [marker]
    assert fakes.registry.tagged("latest") == newer
    assert outcome.action is Action.RELEASE_INCOMPLETE
    assert f"not restored (now on another image): latest -> {newer}" in outcome.reason
    assert f"kept {marker}" in outcome.reason
    announced = fakes.announcer.last()
    assert announced.action is Action.RELEASE_INCOMPLETE
    assert announced.tags == []
    assert announced.not_restored == {"latest": newer}


def test_releasing_a_flagged_image_removes_the_marker_once_another_tag_holds_it() -> None:
    fakes, digest = _flagged()

    outcome = _release(fakes, digest, FLAG_HIGH)

    assert outcome.action is Action.RELEASED
    assert fakes.registry.tags(digest) == ["latest"]


def test_a_marker_ecr_refuses_to_remove_is_not_ignored() -> None:
    fakes, digest = _flagged()
    marker = fakes.store.require(digest).marker_tag
    assert marker is not None
    fakes.registry.fail_tag_removal(marker)

    with pytest.raises(PartialActionError, match=marker):
        _release(fakes, digest, FLAG_HIGH)
    assert fakes.announcer.actions(digest)[-1:] != ["released"]
    assert _release(fakes, digest, FLAG_HIGH).action is Action.RELEASED  # the retry finishes it
    assert fakes.registry.tags(digest) == ["latest"]


def test_an_archive_release_reports_a_tag_that_moved_and_says_the_restore_only_started() -> None:
    fakes = Fakes()
    fakes.registry.create_repository(immutable=False)
    archived = fakes.registry.push("latest", "bad")
    fakes.enhanced.set(archived, list(CRITICAL))
    assert fakes.gate(ARCHIVE).handle(inspector_scan(archived, ["latest"], {"CRITICAL": 1})).action == "archived"
    fixed = fakes.registry.push("latest", "fixed")

    outcome = _release(fakes, archived, ARCHIVE)

    assert outcome.action is Action.RELEASE_INCOMPLETE
    assert f"latest -> {fixed}" in outcome.reason
    assert "restore from ARCHIVE started" in outcome.reason
    assert "ACTIVE" in outcome.reason
    assert fakes.registry.status(archived) == "ACTIVATING"
    assert fakes.announcer.last().tags == []


def test_an_archive_release_with_its_tags_in_place_is_released_and_says_ecr_is_still_restoring() -> None:
    fakes = Fakes()
    fakes.registry.create_repository(immutable=True)
    archived = fakes.registry.push("v1", "bad")
    fakes.enhanced.set(archived, list(CRITICAL))
    assert fakes.gate(ARCHIVE).handle(inspector_scan(archived, ["v1"], {"CRITICAL": 1})).action == "archived"

    outcome = _release(fakes, archived, ARCHIVE)

    assert outcome.action is Action.RELEASED
    assert "restore from ARCHIVE started" in outcome.reason
    assert fakes.announcer.last().tags == ["v1"]


def test_an_archive_release_of_an_image_deleted_meanwhile_says_it_is_gone() -> None:
    fakes = Fakes()
    fakes.registry.create_repository(immutable=True)
    archived = fakes.registry.push("v1", "bad")
    fakes.enhanced.set(archived, list(CRITICAL))
    assert fakes.gate(ARCHIVE).handle(inspector_scan(archived, ["v1"], {"CRITICAL": 1})).action == "archived"
    fakes.registry.delete_image(archived)

    outcome = _release(fakes, archived, ARCHIVE)

    assert outcome.action is Action.RELEASE_INCOMPLETE
    assert "no longer exists" in outcome.reason


def test_releasing_a_quarantined_image_deleted_meanwhile_says_it_is_gone() -> None:
    fakes = Fakes()
    fakes.registry.create_repository(immutable=True)
    digest = fakes.registry.push("v1", "bad")
    fakes.enhanced.set(digest, list(CRITICAL))
    assert fakes.gate().handle(inspector_scan(digest, ["v1"], {"CRITICAL": 1})).action == "quarantined"
    fakes.registry.delete_image(digest)

    outcome = _release(fakes, digest)

    assert outcome.action is Action.RELEASE_INCOMPLETE
    assert "no longer exists" in outcome.reason
    assert fakes.announcer.last().action is Action.RELEASE_INCOMPLETE


def test_a_push_between_the_check_and_the_put_that_wins_is_reported() -> None:
    fakes = Fakes()
    fakes.registry.create_repository(immutable=False)
    digest = fakes.registry.push("v1.3.0", "bad")
    fakes.enhanced.set(digest, list(CRITICAL))
    assert fakes.gate().handle(inspector_scan(digest, ["v1.3.0"], {"CRITICAL": 1})).action == "quarantined"
    pushed: dict[str, str] = {}
    # the other push lands right after our PutImage (MUTABLE: the last writer wins)

    def push_other() -> None:
        pushed.setdefault("b", fakes.registry.push("v1.3.0", "fix"))

    fakes.registry.before("add_tag", lambda: fakes.registry.before("describe", push_other))

    outcome = _release(fakes, digest)

    assert fakes.registry.tagged("v1.3.0") == pushed["b"]
    assert outcome.action is Action.RELEASE_INCOMPLETE
    assert f"v1.3.0 -> {pushed['b']}" in outcome.reason


def test_a_release_that_fails_after_putting_the_tag_back_is_finished_by_the_retry_and_announced_once() -> None:
    """ECR throttles the re-read after the PutImage: the call fails, the record still owes its announcement, and
    the retry finds the tag in place, removes the quarantine tag and announces the release once."""
    fakes = Fakes()
    fakes.registry.create_repository()
    image = fakes.registry.push("v1", "bad")
    fakes.enhanced.set(image, list(CRITICAL))
    assert fakes.gate().handle(inspector_scan(image, ["v1"], {"CRITICAL": 1})).action == "quarantined"
    fakes.announcer.clear()
    fakes.registry.before("add_tag", lambda: fakes.registry.fail("describe"))  # the read right after the put

    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever ECR raised: the invocation fails, Lambda retries
        _release(fakes, image)
    outcome = _release(fakes, image)

    assert outcome.action is Action.RELEASED
    assert fakes.registry.tags(image) == ["v1"]
    assert [d.action for d in fakes.announcer.published] == [Action.RELEASED]
