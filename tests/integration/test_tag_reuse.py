"""A tag a quarantined image gave up is pushed onto another image: announced once, with both digests."""

from __future__ import annotations

from ecr_warden.domain.records import ImageStatus
from tests.integration import events
from tests.integration.conftest import REPOSITORY, Env
from tests.integration.test_scan_gate import CRITICAL


def _quarantined(aws: Env, tag: str, immutable: bool = True) -> str:
    aws.create_repository(immutable=immutable)
    digest = aws.push(tag, "bad")
    aws.enhanced.findings[(REPOSITORY, digest)] = list(CRITICAL)
    assert aws.gate().handle(events.inspector_scan(digest, [tag], {"CRITICAL": 1, "TOTAL": 2})).action == (
        "quarantined"
    )
    aws.decisions()
    return digest


def test_a_freed_tag_pushed_onto_another_image_is_announced_with_both_digests(aws: Env) -> None:
    quarantined = _quarantined(aws, "v1.3.0")
    other = aws.push("v1.3.0", "someone-else")  # IMMUTABLE: possible only because quarantine freed the tag

    outcome = aws.gate().handle(events.push(other, "v1.3.0"))

    assert outcome.action == "tag_reused"
    assert outcome.digest == quarantined
    assert outcome.reason == f"tag v1.3.0 of a quarantined image now points at {other}"
    [announced] = aws.decisions()
    assert announced["action"] == "tag_reused"
    assert (announced["digest"], announced["tag_now_on"], announced["tags"]) == (quarantined, other, ["v1.3.0"])
    record = aws.record(quarantined)
    assert record is not None
    assert record.status is ImageStatus.QUARANTINED  # nothing else changes: the other image has its own scan
    assert record.history[-1].action == "tag_reused"
    assert aws.tags(other) == ["v1.3.0"]


def test_the_same_push_delivered_again_is_announced_once(aws: Env) -> None:
    _quarantined(aws, "v1.3.0")
    other = aws.push("v1.3.0", "someone-else")
    event = events.push(other, "v1.3.0")
    aws.gate().handle(event)
    assert aws.gate().handle(event).action == "noop"
    assert [d["action"] for d in aws.decisions()] == ["tag_reused"]


def test_moving_a_tag_in_a_mutable_repository_is_announced(aws: Env) -> None:
    quarantined = _quarantined(aws, "latest", immutable=False)
    fixed = aws.push("latest", "fixed-build")
    assert aws.gate().handle(events.push(fixed, "latest")).action == "tag_reused"
    assert aws.decisions()[0]["digest"] == quarantined


def test_no_announcement_after_the_image_was_released(aws: Env) -> None:
    from ecr_warden_tools import admin

    quarantined = _quarantined(aws, "v2", immutable=False)
    admin.release(admin.Deployment("dev", "us-east-1"), REPOSITORY, quarantined, reason="accepted", by="alice")
    aws.decisions()
    newer = aws.push("v2", "newer")
    assert aws.gate().handle(events.push(newer, "v2")).action == "noop"
    assert aws.decisions() == []


def test_an_untouched_tag_costs_one_read(aws: Env) -> None:
    aws.create_repository()
    digest = aws.push("v9", "fresh")
    aws.counter.calls.clear()
    assert aws.gate().handle(events.push(digest, "v9")).action == "noop"
    assert dict(aws.counter.calls) == {"dynamodb:GetItem": 2}  # the image's record, the tag's claim
