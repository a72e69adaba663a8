"""Quarantine-tag squatting, and what a run that fails half-way leaves behind (through the fakes).

Anyone who can push can put `quarantined-<first 12 hex of a victim's digest>` on another image first. In an
IMMUTABLE repository that tag can then never be put on the victim: the gate must quarantine it anyway, and a
record must never claim a quarantine that ECR does not have."""

from __future__ import annotations

import pytest

from ecr_warden.domain.records import ImageStatus
from ecr_warden.errors import TagConflictError
from tests.events import CRITICAL, push
from tests.fakes import REPOSITORY, Fakes
from tests.unit.test_gate_with_fakes import CRITICAL_COUNTS, critical_image, inspector_scan, q


def squatted(fakes: Fakes) -> str:
    """A CRITICAL image tagged v1 whose quarantine tag an outsider put on another image first."""
    victim = critical_image(fakes, "v1")
    fakes.registry.push(q(victim), "squatter")
    return victim


def test_a_squatted_quarantine_tag_does_not_stop_the_quarantine(fakes: Fakes) -> None:
    gate = fakes.gate()
    victim = squatted(fakes)
    outcome = gate.handle(inspector_scan(victim, ["v1"], CRITICAL_COUNTS))

    assert outcome.action == "quarantined"
    record = fakes.store.require(victim)
    [held_by] = fakes.registry.tags(victim)  # v1 is gone; one tag of ecr-warden's own keeps the image
    assert held_by == record.quarantine_tag
    assert held_by.startswith(q(victim) + "-")
    assert len(held_by) > len(q(victim)) + 12
    assert record.status is ImageStatus.QUARANTINED
    assert record.original_tags == ["v1"]
    assert fakes.announcer.actions() == ["quarantined"]
    assert fakes.announcer.last().quarantine_tag == held_by


def test_the_fallback_tag_cannot_be_predicted(fakes: Fakes) -> None:
    policy = fakes.gate().ctx.policy
    digest = "sha256:" + "ab" * 32
    assert policy.fallback_quarantine_tag(digest) != policy.fallback_quarantine_tag(digest)


def test_the_fallback_tag_is_recognised_as_own_from_the_record_only(fakes: Fakes) -> None:
    gate = fakes.gate()
    victim = squatted(fakes)
    gate.handle(inspector_scan(victim, ["v1"], CRITICAL_COUNTS))
    own = fakes.store.require(victim).quarantine_tag
    assert own is not None
    fakes.registry.reset_calls() if hasattr(fakes.registry, "reset_calls") else fakes.reset_calls()
    assert gate.handle(push(victim, own)).reason.startswith(f"own tag {own}")
    assert fakes.registry.total_calls == 0  # recognised without any ECR call
    # a look-alike pushed by someone else is a deployable tag like any other: removed
    fakes.registry.push(q(victim) + "-mine", "bad")
    assert gate.handle(push(victim, q(victim) + "-mine")).action == "retag_blocked"
    assert fakes.registry.tags(victim) == [own]


def test_a_squatted_retry_keeps_the_recorded_tag_and_acts_once(fakes: Fakes) -> None:
    gate = fakes.gate()
    victim = squatted(fakes)
    event = inspector_scan(victim, ["v1"], CRITICAL_COUNTS)
    fakes.registry.fail("remove_tags")
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the port raised
        gate.handle(event)
    own = fakes.store.require(victim).quarantine_tag
    assert fakes.store.require(victim).incomplete  # the record says the quarantine is not complete
    gate.handle(event)
    gate.handle(event)
    assert fakes.registry.tags(victim) == [own]
    assert fakes.announcer.actions() == ["quarantined"]
    assert fakes.store.require(victim).incomplete is None


def test_when_no_quarantine_tag_can_be_added_nothing_is_removed_and_it_is_retried(fakes: Fakes) -> None:
    gate = fakes.gate()
    victim = squatted(fakes)
    event = inspector_scan(victim, ["v1"], CRITICAL_COUNTS)
    fakes.registry.fail("add_tag", TagConflictError("taken"), times=2)  # the usual tag and the fallback
    with pytest.raises(TagConflictError):
        gate.handle(event)
    assert fakes.registry.tags(victim) == ["v1"]  # never left without a tag
    record = fakes.store.require(victim)
    assert record.incomplete
    assert "quarantined not completed" in record.incomplete
    assert fakes.announcer.actions() == []
    gate.handle(event)  # the retry completes it under the recorded fallback tag, and announces it once
    assert fakes.registry.tags(victim) == [fakes.store.require(victim).quarantine_tag]
    assert fakes.announcer.actions() == ["quarantined"]


def test_a_retag_of_a_victim_whose_tag_was_taken_later_is_still_blocked(fakes: Fakes) -> None:
    """Quarantined, released, then squatted, then blocked again: the second quarantine falls back too."""
    gate = fakes.gate()
    victim = critical_image(fakes, "v1")
    gate.handle(inspector_scan(victim, ["v1"], CRITICAL_COUNTS))
    from tests.unit.test_gate_with_fakes import release

    release(gate, victim)
    assert fakes.registry.tags(victim) == ["v1"]
    fakes.registry.push(q(victim), "squatter")
    fakes.enhanced.set(victim, [*CRITICAL, CRITICAL[0].model_copy(update={"id": "CVE-2099-0001"})])
    assert gate.handle(inspector_scan(victim, ["v1"], None)).action == "quarantined"
    assert fakes.registry.tags(victim) == [fakes.store.require(victim).quarantine_tag]
    assert fakes.registry.tagged(q(victim)) != victim


def test_a_new_decision_is_announced_as_itself_not_as_an_old_debt(fakes: Fakes) -> None:
    gate = fakes.gate()
    victim = critical_image(fakes, "v1")
    fakes.announcer.reject()
    with pytest.raises(Exception):  # noqa: B017, PT011
        gate.handle(inspector_scan(victim, ["v1"], CRITICAL_COUNTS))
    assert fakes.store.require(victim).pending_announcement is not None
    fakes.enhanced.set(victim, [*CRITICAL, CRITICAL[0].model_copy(update={"id": "CVE-2099-0002"})])
    assert gate.handle(inspector_scan(victim, ["v1"], None)).action == "updated"
    assert fakes.store.require(victim).pending_announcement is None
    assert REPOSITORY


def test_a_squatted_marker_tag_does_not_stop_the_flag(fakes: Fakes) -> None:
    from tests.unit.test_gate_with_fakes import TAG_AT_HIGH, marker, policy

    flagging = policy(**TAG_AT_HIGH)
    fakes.registry.create_repository()
    victim = fakes.registry.push("v1", "flag-me")
    fakes.enhanced.set(victim, [CRITICAL[1]])  # HIGH only: a TAG verdict
    fakes.registry.push(marker(victim), "squatter")  # an outsider took the marker first
    outcome = fakes.gate(flagging).handle(inspector_scan(victim, ["v1"], {"CRITICAL": 0, "HIGH": 1}))

    assert outcome.action == "tagged"
    record = fakes.store.require(victim)
    assert record.marker_tag is not None
    assert record.marker_tag.startswith(marker(victim) + "-")
    assert sorted(fakes.registry.tags(victim)) == sorted(["v1", record.marker_tag])
    # ecr-warden's own push of that marker is recognised from the record, not re-decided
    assert fakes.gate(flagging).handle(push(victim, record.marker_tag)).action == "noop"
    assert fakes.announcer.actions() == ["tagged"]
