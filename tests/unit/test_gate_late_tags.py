"""Defect 10: a tag pushed between the gate's DescribeImages and its write-ahead save finds no record (its push
event is decided before the quarantine is recorded); the quarantine must still take it away, and record it so a
release restores it."""

from __future__ import annotations

from typing import Any

from ecr_warden.domain.records import ImageStatus
from ecr_warden.gate.dispatch import ScanGate
from tests.events import CRITICAL, REPOSITORY, inspector_scan, push
from tests.fakes import Fakes, image_manifest

COUNTS = {"CRITICAL": 1, "TOTAL": 1}


def _push_after_first_describe(fakes: Fakes, gate: ScanGate, tag: str, digest: str, seed: str) -> None:
    """A pusher adds `tag` to the image right after the gate read it; its push event runs to the end at once."""
    describe = fakes.registry.describe
    state = {"pushed": False}

    def racing(repository: str, image_digest: str) -> Any:
        info = describe(repository, image_digest)
        if not state["pushed"]:
            state["pushed"] = True
            assert fakes.registry.push(tag, manifest=image_manifest(seed)) == digest
            outcome = gate.handle(push(digest, tag))
            assert outcome.action == "noop", "the push finds no record yet: the race this test is about"
        return info

    fakes.registry.describe = racing  # type: ignore[method-assign]


def test_a_tag_pushed_while_the_gate_decides_is_quarantined_too(fakes: Fakes) -> None:
    gate = fakes.gate()
    fakes.registry.create_repository()
    digest = fakes.registry.push("v1", "bad")
    fakes.enhanced.set(digest, CRITICAL)
    _push_after_first_describe(fakes, gate, "v1-hotfix", digest, "bad")

    outcome = gate.handle(inspector_scan(digest, ["v1"], COUNTS))

    assert outcome.action == "quarantined"
    record = fakes.store.require(digest)
    assert record.status is ImageStatus.QUARANTINED
    assert fakes.registry.tags(digest) == [record.quarantine_tag], "no deployable tag may survive"
    assert sorted(record.original_tags) == ["v1", "v1-hotfix"], "release must restore the late tag too"
    [decision] = fakes.announcer.published
    assert sorted(decision.tags) == ["v1", "v1-hotfix"]


def test_a_tag_that_moved_to_another_image_meanwhile_is_left_where_it_is(fakes: Fakes) -> None:
    gate = fakes.gate()
    fakes.registry.create_repository(immutable=False)
    digest = fakes.registry.push("v1", "bad")
    fakes.registry.push("latest", "bad")
    fakes.enhanced.set(digest, CRITICAL)
    describe = fakes.registry.describe
    moved = {"done": False}

    def moving(repository: str, image_digest: str) -> Any:
        info = describe(repository, image_digest)
        if not moved["done"]:
            moved["done"] = True
            fakes.registry.push("latest", "fixed-build")  # CI moves latest to a fixed build (MUTABLE)
        return info

    fakes.registry.describe = moving  # type: ignore[method-assign]
    outcome = gate.handle(inspector_scan(digest, ["v1", "latest"], COUNTS))

    assert outcome.action == "quarantined"
    fixed = fakes.registry.digest_of(REPOSITORY, "latest")
    assert fixed is not None
    assert fixed != digest, "the fixed build keeps latest"
    assert fakes.registry.tags(digest) == [fakes.store.require(digest).quarantine_tag]
