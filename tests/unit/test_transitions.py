"""The gate's state machine (`next_step`) and its plan builders: pure functions, tested without any port."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from ecr_warden.contracts.decision import Action
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.images import ImageInfo, ImageRef, Manifest
from ecr_warden.domain.records import ImageRecord, ImageStatus
from ecr_warden.gate import transitions
from ecr_warden.gate.context import Case, GateContext, Trigger
from ecr_warden.gate.evaluate import Decision, Verdict
from ecr_warden.gate.plan import AddTag, Archive, RemoveTags
from ecr_warden.gate.transitions import Step, next_step
from ecr_warden.policy.load import default_policy, parse_policy

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
REPOSITORY = "ses-base/api-server"
DIGEST = "sha256:" + "ab" * 32
IMAGE = ImageRef(REPOSITORY, DIGEST)
QUARANTINE_TAG = "quarantined-" + DIGEST[7:19]
MARKER_TAG = "ecr-warden-flagged-" + DIGEST[7:19]
MANIFEST = Manifest('{"schemaVersion": 2}', "application/vnd.oci.image.manifest.v1+json")
TRIGGER = Trigger("Inspector2 Scan", "event-1")
CTX = GateContext(
    policy=default_policy(), mode="enforce", account="123456789012", region="us-east-1", environment="test",
    now=lambda: NOW,
)  # fmt: skip


def decision(verdict: Verdict = Verdict.BLOCK, *ids: str, audit: bool = False, note: str = "") -> Decision:
    severity = {Verdict.BLOCK: "CRITICAL", Verdict.TAG: "HIGH", Verdict.PASS: "LOW"}[verdict]
    counted = [Finding(id=cve, severity=severity) for cve in (ids or ("CVE-2024-0001",))]
    return Decision(
        verdict=verdict,
        rule="default",
        block_method="quarantine",
        audit=audit,
        reasons=[f"{verdict.value.lower()} because of {', '.join(f.id for f in counted)}"],
        severity_counts={severity: len(counted)},
        counted=counted if verdict is not Verdict.PASS else [],
        exempted=[],
        findings_total=len(counted),
        note=note,
    )


BLOCK = decision(Verdict.BLOCK)
BLOCK_OTHER = decision(Verdict.BLOCK, "CVE-2024-0002")
TAG = decision(Verdict.TAG)
TAG_OTHER = decision(Verdict.TAG, "CVE-2024-0003")
PASS = decision(Verdict.PASS)
BLOCK_AUDIT = decision(Verdict.BLOCK, audit=True)
PASS_AUDIT = decision(Verdict.PASS, audit=True)


def record(status: ImageStatus, fingerprint: str | None = "f" * 32, **fields: object) -> ImageRecord:
    data: dict[str, object] = {
        "repository": REPOSITORY,
        "digest": DIGEST,
        "status": status,
        "updated_at": NOW - timedelta(days=1),
        "fingerprint": fingerprint,
        "version": 3,
        **fields,
    }
    return ImageRecord.model_validate(data)


def case(stored: ImageRecord | None, made: Decision, tags: list[str] | None = None) -> Case:
    return Case(IMAGE, ["v1"] if tags is None else tags, made, stored, TRIGGER)


# -- next_step ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: str
    record: ImageRecord | None
    decision: Decision
    expected: Step
    auto_release: bool = False


SAME_FINGERPRINT = {
    ImageStatus.QUARANTINED: Step.VERIFY_QUARANTINE,
    ImageStatus.ARCHIVED: Step.COMPLETE,
    ImageStatus.TAGGED: Step.COMPLETE,
    ImageStatus.RELEASED: Step.KEPT_RELEASED,
    ImageStatus.PASSED: Step.DUPLICATE,
    ImageStatus.AUDITED: Step.DUPLICATE,
    ImageStatus.SCAN_FAILED: Step.DUPLICATE,
    ImageStatus.SKIPPED: Step.DUPLICATE,
    ImageStatus.EXEMPT: Step.DUPLICATE,
    ImageStatus.PENDING: Step.BLOCK,  # a PENDING record (a multi-arch child) was never decided: decide now
}
FUTURE, PAST = NOW + timedelta(days=7), NOW - timedelta(seconds=1)

ROWS = [
    # same decision as recorded, in every status (the decision here is a BLOCK)
    *(
        Row(f"same-fingerprint-{status.value}", record(status, BLOCK.fingerprint), BLOCK, step)
        for status, step in SAME_FINGERPRINT.items()
    ),
    Row("same-fingerprint-pending-pass", record(ImageStatus.PENDING, PASS.fingerprint), PASS, Step.PASS),
    Row("same-fingerprint-pending-tag", record(ImageStatus.PENDING, TAG.fingerprint), TAG, Step.TAG),
    Row("same-fingerprint-tagged-by-tag", record(ImageStatus.TAGGED, TAG.fingerprint), TAG, Step.COMPLETE),
    Row("same-fingerprint-passed-auto", record(ImageStatus.PASSED, PASS.fingerprint), PASS, Step.DUPLICATE, True),
    # no record yet
    Row("new-block", None, BLOCK, Step.BLOCK),
    Row("new-tag", None, TAG, Step.TAG),
    Row("new-pass", None, PASS, Step.PASS),
    Row("new-pass-auto-release", None, PASS, Step.PASS, True),
    Row("new-block-audit", None, BLOCK_AUDIT, Step.BLOCK),
    # exempt: holds while its expiry is in the future, whatever the decision
    Row("exempt-future-block", record(ImageStatus.EXEMPT, exempt_until=FUTURE), BLOCK, Step.EXEMPT),
    Row("exempt-future-tag", record(ImageStatus.EXEMPT, exempt_until=FUTURE), TAG, Step.EXEMPT),
    Row("exempt-future-pass", record(ImageStatus.EXEMPT, exempt_until=FUTURE), PASS, Step.EXEMPT),
    Row("exempt-past-block", record(ImageStatus.EXEMPT, exempt_until=PAST), BLOCK, Step.BLOCK),
    Row("exempt-expiring-now-block", record(ImageStatus.EXEMPT, exempt_until=NOW), BLOCK, Step.BLOCK),
    Row("exempt-past-tag", record(ImageStatus.EXEMPT, exempt_until=PAST), TAG, Step.TAG),
    Row("exempt-past-pass", record(ImageStatus.EXEMPT, exempt_until=PAST), PASS, Step.PASS),
    Row("exempt-without-expiry-block", record(ImageStatus.EXEMPT), BLOCK, Step.BLOCK),
    Row(
        "exempt-until-without-exempt-status",
        record(ImageStatus.QUARANTINED, exempt_until=FUTURE),
        BLOCK,
        Step.NOTE_UPDATED,
    ),
    # released: the admin's release holds for the findings it released, not for new ones
    Row(
        "released-same-released-fingerprint",
        record(ImageStatus.RELEASED, PASS.fingerprint, released_fingerprint=BLOCK.fingerprint),
        BLOCK,
        Step.NOTE_KEPT_RELEASED,
    ),
    Row(
        "released-other-released-fingerprint",
        record(ImageStatus.RELEASED, BLOCK.fingerprint, released_fingerprint=BLOCK.fingerprint),
        BLOCK_OTHER,
        Step.BLOCK,
    ),
    Row("released-without-released-fingerprint", record(ImageStatus.RELEASED), BLOCK, Step.BLOCK),
    Row("released-then-tag", record(ImageStatus.RELEASED, released_fingerprint=BLOCK.fingerprint), TAG, Step.TAG),
    Row("released-then-pass", record(ImageStatus.RELEASED, released_fingerprint=BLOCK.fingerprint), PASS, Step.PASS),
    # blocked, other findings still blocking: record and announce, ECR stays as it is
    Row("quarantined-other-block", record(ImageStatus.QUARANTINED, BLOCK.fingerprint), BLOCK_OTHER, Step.NOTE_UPDATED),
    Row("archived-other-block", record(ImageStatus.ARCHIVED, BLOCK.fingerprint), BLOCK_OTHER, Step.NOTE_UPDATED),
    Row("quarantined-audit-block", record(ImageStatus.QUARANTINED, BLOCK.fingerprint), BLOCK_AUDIT, Step.NOTE_UPDATED),
    # blocked, no longer breaking the policy: auto-release only when the policy says so and not in audit
    Row("quarantined-pass-auto-off", record(ImageStatus.QUARANTINED), PASS, Step.NOTE_NOW_COMPLIANT),
    Row("quarantined-pass-auto-on", record(ImageStatus.QUARANTINED), PASS, Step.AUTO_RELEASE, True),
    Row("archived-pass-auto-on", record(ImageStatus.ARCHIVED), PASS, Step.AUTO_RELEASE, True),
    Row("archived-pass-auto-off", record(ImageStatus.ARCHIVED), PASS, Step.NOTE_NOW_COMPLIANT),
    Row("quarantined-audit-pass-auto-on", record(ImageStatus.QUARANTINED), PASS_AUDIT, Step.NOTE_NOW_COMPLIANT, True),
    Row("quarantined-tag-auto-on", record(ImageStatus.QUARANTINED), TAG, Step.AUTO_RELEASE, True),
    Row("quarantined-tag-auto-off", record(ImageStatus.QUARANTINED), TAG, Step.NOTE_NOW_COMPLIANT),
    # the tag verdict
    Row("tagged-other-tag", record(ImageStatus.TAGGED, TAG.fingerprint), TAG_OTHER, Step.NOTE_UPDATED),
    Row("passed-then-tag", record(ImageStatus.PASSED, PASS.fingerprint), TAG, Step.TAG),
    Row("audited-then-tag", record(ImageStatus.AUDITED), TAG, Step.TAG),
    Row("tagged-then-block", record(ImageStatus.TAGGED, TAG.fingerprint), BLOCK, Step.BLOCK),
    Row("tagged-then-pass", record(ImageStatus.TAGGED, TAG.fingerprint), PASS, Step.PASS),
    Row("tagged-then-pass-auto-on", record(ImageStatus.TAGGED, TAG.fingerprint), PASS, Step.PASS, True),
    # other statuses, new decision
    Row("passed-then-block", record(ImageStatus.PASSED, PASS.fingerprint), BLOCK, Step.BLOCK),
    Row("audited-then-enforced-block", record(ImageStatus.AUDITED, BLOCK_AUDIT.fingerprint), BLOCK, Step.BLOCK),
    Row("scan-failed-then-block", record(ImageStatus.SCAN_FAILED), BLOCK, Step.BLOCK),
    Row("skipped-then-block", record(ImageStatus.SKIPPED, None), BLOCK, Step.BLOCK),
    Row("pending-then-block", record(ImageStatus.PENDING, None), BLOCK, Step.BLOCK),
    Row("pending-then-pass", record(ImageStatus.PENDING, None), PASS, Step.PASS),
    Row("audited-then-pass", record(ImageStatus.AUDITED), PASS, Step.PASS),
    Row("scan-failed-then-pass", record(ImageStatus.SCAN_FAILED), PASS, Step.PASS),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_next_step(row: Row) -> None:
    assert next_step(case(row.record, row.decision), NOW, row.auto_release) is row.expected


def test_the_table_reaches_every_step() -> None:
    assert {row.expected for row in ROWS} == set(Step)


def test_every_step_is_standing_noted_or_acted_on_once() -> None:
    acted = {Step.VERIFY_QUARANTINE, Step.COMPLETE, Step.AUTO_RELEASE, Step.BLOCK, Step.TAG, Step.PASS}
    assert not set(transitions.STANDING) & set(transitions.NOTES)
    assert not (set(transitions.STANDING) | set(transitions.NOTES)) & acted
    assert set(transitions.STANDING) | set(transitions.NOTES) | acted == set(Step)


def test_the_fingerprint_separates_mode_note_and_findings() -> None:
    fingerprints = {BLOCK.fingerprint, BLOCK_AUDIT.fingerprint, BLOCK_OTHER.fingerprint, TAG.fingerprint}
    assert len(fingerprints) == 4
    assert decision(Verdict.BLOCK, note="scan FAILED").fingerprint != BLOCK.fingerprint
    assert decision(Verdict.BLOCK).fingerprint == BLOCK.fingerprint  # same input, same identity


def test_an_expired_exemption_with_unchanged_findings_blocks() -> None:
    stored = record(ImageStatus.EXEMPT, BLOCK.fingerprint, exempt_until=PAST)
    assert next_step(case(stored, BLOCK), NOW, False) is Step.BLOCK


# -- note_of ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "action", "announce"),
    [
        (Step.EXEMPT, Action.NOOP, False),
        (Step.NOTE_KEPT_RELEASED, Action.KEPT_RELEASED, False),
        (Step.NOTE_UPDATED, Action.UPDATED, True),
        (Step.NOTE_NOW_COMPLIANT, Action.NOW_COMPLIANT, True),
    ],
)
def test_note_of(step: Step, action: Action, announce: bool) -> None:
    stored = record(ImageStatus.EXEMPT, exempt_until=FUTURE)
    got_action, reason, got_announce = transitions.note_of(step, case(stored, BLOCK))
    assert (got_action, got_announce) == (action, announce)
    if step is Step.EXEMPT:
        assert reason == f"image exempt until {FUTURE}"
    elif step is Step.NOTE_UPDATED:
        assert reason == BLOCK.reasons[0]  # the decision's own reason
    else:
        assert reason == transitions.NOTES[step][1]


def test_note_records_without_changing_the_status_or_ecr() -> None:
    stored = record(ImageStatus.QUARANTINED, BLOCK.fingerprint, original_tags=["v1"], quarantine_tag=QUARANTINE_TAG)
    plan = transitions.note(CTX, case(stored, BLOCK_OTHER), Action.UPDATED, "other findings", True)
    assert plan.record.status is ImageStatus.QUARANTINED
    assert plan.record.fingerprint == BLOCK_OTHER.fingerprint
    assert plan.record.counted_ids == ["CVE-2024-0002"]
    assert plan.effects == ()
    assert (plan.action, plan.reason, plan.announce, plan.expected_version) == (
        Action.UPDATED, "other findings", True, 3
    )  # fmt: skip
    assert [h.action for h in plan.record.history] == ["updated"]
    assert stored.fingerprint == BLOCK.fingerprint  # the input is not changed
    assert stored.history == []


# -- records -------------------------------------------------------------------------------------------------------


def test_fresh_is_a_new_pending_record_or_a_deep_copy() -> None:
    new = transitions.fresh(IMAGE, None, NOW)
    assert (new.status, new.version, new.updated_at, new.original_tags) == (ImageStatus.PENDING, 0, NOW, [])
    stored = record(ImageStatus.PASSED, original_tags=["v1"])
    copy = transitions.fresh(IMAGE, stored, NOW)
    copy.original_tags.append("v2")
    assert stored.original_tags == ["v1"]


def test_decided_sets_the_decision_and_appends_one_history_entry() -> None:
    stored = record(ImageStatus.PASSED, PASS.fingerprint)
    updated = transitions.decided(CTX, stored, case(stored, BLOCK), ImageStatus.QUARANTINED, Action.QUARANTINED, "why")
    assert updated.status is ImageStatus.QUARANTINED
    assert (updated.verdict, updated.rule, updated.fingerprint) == ("BLOCK", "default", BLOCK.fingerprint)
    assert updated.counted_ids == ["CVE-2024-0001"]
    assert updated.severity_counts == {"CRITICAL": 1}
    assert updated.updated_at == NOW
    [entry] = updated.history
    assert (entry.action, entry.status, entry.reason, entry.trigger, entry.event_id) == (
        "quarantined", "QUARANTINED", "why", "Inspector2 Scan", "event-1"
    )  # fmt: skip
    default = transitions.decided(CTX, stored, case(stored, BLOCK), ImageStatus.QUARANTINED, Action.QUARANTINED)
    assert default.history[-1].reason == BLOCK.reasons[0]  # the decision's own reason unless another is given


def test_decision_of_stands_for_the_stored_record() -> None:
    pending = record(ImageStatus.PENDING, None)
    stored = transitions.decided(CTX, pending, case(pending, BLOCK), ImageStatus.QUARANTINED, Action.QUARANTINED, "why")
    rebuilt = transitions.decision_of(CTX, stored)
    assert rebuilt.fingerprint == BLOCK.fingerprint
    assert rebuilt.verdict is Verdict.BLOCK
    assert rebuilt.reasons == ["why"]
    assert [f.id for f in rebuilt.counted] == ["CVE-2024-0001"]
    archive_policy = parse_policy(json.dumps({"rules": [{"name": "r", "block_method": "archive", "audit": True}]}))
    ctx = GateContext(archive_policy, "enforce", "123456789012", "us-east-1", "test", now=lambda: NOW)
    assert (transitions.decision_of(ctx, stored).block_method, transitions.decision_of(ctx, stored).audit) == (
        "archive", True
    )  # fmt: skip


# -- plans ---------------------------------------------------------------------------------------------------------


def info(*tags: str) -> ImageInfo:
    return ImageInfo(DIGEST, list(tags), MANIFEST.media_type)


def test_quarantine_plan_writes_ahead_then_adds_the_tag_then_removes_the_deployable_ones() -> None:
    plan = transitions.quarantine(CTX, case(None, BLOCK, ["v1"]), info("v1", "stable"), MANIFEST, ["v1", "stable"])
    assert plan.record.status is ImageStatus.QUARANTINED
    assert plan.record.original_tags == ["v1", "stable"]
    assert plan.record.quarantine_tag == QUARANTINE_TAG
    assert plan.expected_version == 0
    assert plan.effects == (AddTag(QUARANTINE_TAG, MANIFEST), RemoveTags(("v1", "stable")))
    assert (plan.action, plan.previous, plan.announce, plan.metric) == (
        Action.QUARANTINED, None, True, "ImagesQuarantined"
    )  # fmt: skip
    assert plan.tags == ("v1", "stable")
    assert plan.reason == BLOCK.reasons[0]
    assert [h.action for h in plan.record.history] == ["quarantined"]


def test_quarantine_plan_does_not_add_a_quarantine_tag_that_is_already_there() -> None:
    plan = transitions.quarantine(CTX, case(None, BLOCK), info("v1", QUARANTINE_TAG), MANIFEST, ["v1"])
    assert plan.effects == (RemoveTags(("v1",)),)


def test_quarantine_plan_of_an_untagged_image_only_adds_the_quarantine_tag() -> None:
    plan = transitions.quarantine(CTX, case(None, BLOCK, []), info(), MANIFEST, [])
    assert plan.effects == (AddTag(QUARANTINE_TAG, MANIFEST), RemoveTags(()))
    assert plan.record.original_tags == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        # A new quarantine records what is on the image now: tags named by earlier events (or restored by an
        # earlier release) that the image has lost since must not come back with the next release.
        (ImageStatus.PASSED, ["v2"]),
        (ImageStatus.RELEASED, ["v2"]),
        (ImageStatus.AUDITED, ["v2"]),
        (ImageStatus.TAGGED, ["v2"]),
        (ImageStatus.PENDING, ["v2"]),
        (ImageStatus.QUARANTINED, ["v1", "v2"]),  # a quarantine in place keeps what it recorded
    ],
)
def test_quarantine_plan_original_tags(status: ImageStatus, expected: list[str]) -> None:
    stored = record(status, original_tags=["v1"])
    plan = transitions.quarantine(CTX, case(stored, BLOCK, ["v2"]), info("v2"), MANIFEST, ["v2"])
    assert plan.record.original_tags == expected
    assert plan.expected_version == stored.version
    assert plan.previous is status
    assert stored.status is status  # the stored record is not changed in place
    assert stored.history == []


def test_passed_after_quarantine_and_release_keeps_the_recorded_tags_and_a_new_quarantine_resets_them() -> None:
    quarantined = transitions.quarantine(CTX, case(None, BLOCK, ["v1"]), info("v1"), MANIFEST, ["v1"]).record
    released = quarantined.model_copy(update={"status": ImageStatus.RELEASED, "version": 2})
    passed = transitions.passed(CTX, case(released, PASS, ["v1", "latest"]), marker_removed=False).record
    assert passed.status is ImageStatus.PASSED
    assert passed.original_tags == ["v1", "latest"]
    assert passed.quarantine_tag == QUARANTINE_TAG  # kept: still recognised as our own tag on this digest
    passed = passed.model_copy(update={"version": 3})
    again = transitions.quarantine(CTX, case(passed, BLOCK_OTHER, ["v2"]), info("v2"), MANIFEST, ["v2"]).record
    assert again.original_tags == ["v2"]


def test_passed_plan_has_no_effects_and_clears_the_marker_only_when_removed() -> None:
    stored = record(ImageStatus.TAGGED, TAG.fingerprint, original_tags=["v1"], marker_tag=MARKER_TAG)
    removed = transitions.passed(CTX, case(stored, PASS, ["v2"]), marker_removed=True)
    kept = transitions.passed(CTX, case(stored, PASS, ["v2"]), marker_removed=False)
    assert removed.record.marker_tag is None
    assert kept.record.marker_tag == MARKER_TAG
    for plan in (removed, kept):
        assert plan.effects == ()
        assert plan.record.status is ImageStatus.PASSED
        assert plan.record.original_tags == ["v1", "v2"]
        assert (plan.action, plan.announce, plan.tags, plan.previous) == (
            Action.PASSED, True, None, ImageStatus.TAGGED
        )  # fmt: skip


def test_archive_plan_archives_without_touching_tags() -> None:
    plan = transitions.archive(CTX, case(None, BLOCK), ["v1"])
    assert plan.effects == (Archive(),)
    assert plan.record.status is ImageStatus.ARCHIVED
    assert plan.record.original_tags == ["v1"]
    assert plan.record.quarantine_tag is None
    assert (plan.action, plan.metric, plan.tags) == (Action.ARCHIVED, "ImagesArchived", ("v1",))


def test_tag_plan_adds_the_marker() -> None:
    stored = record(ImageStatus.PASSED, PASS.fingerprint, original_tags=["v0"])
    plan = transitions.tag(CTX, case(stored, TAG, ["v1"]), MANIFEST)
    assert plan.effects == (AddTag(MARKER_TAG, MANIFEST),)
    assert plan.record.status is ImageStatus.TAGGED
    assert plan.record.marker_tag == MARKER_TAG
    assert plan.record.original_tags == ["v0", "v1"]
    assert (plan.action, plan.tags, plan.metric) == (Action.TAGGED, ("v1",), "ImagesTagged")


@pytest.mark.parametrize(
    ("action", "block_method"),
    [(Action.WOULD_QUARANTINE, "quarantine"), (Action.WOULD_ARCHIVE, "archive"), (Action.WOULD_TAG, "quarantine")],
)
def test_audited_plan_has_no_effects(action: Action, block_method: str) -> None:
    made = BLOCK_AUDIT.model_copy(update={"block_method": block_method})
    plan = transitions.audited(CTX, case(None, made), ["v1"], action)
    assert plan.effects == ()
    assert plan.record.status is ImageStatus.AUDITED
    assert plan.record.audit_action == action.value
    assert plan.record.original_tags == ["v1"]
    assert plan.record.history[-1].reason.startswith("audit mode, nothing changed: ")
    assert (plan.action, plan.announce, plan.tags, plan.metric) == (action, True, ("v1",), None)


def test_retag_blocked_adds_the_quarantine_tag_before_removing_when_it_is_missing() -> None:
    stored = record(ImageStatus.QUARANTINED, BLOCK.fingerprint, original_tags=["v1"], quarantine_tag=QUARANTINE_TAG)
    plan = transitions.retag_blocked(CTX, stored, info("v1-hotfix"), MANIFEST, ["v1-hotfix"], TRIGGER)
    assert plan.effects == (AddTag(QUARANTINE_TAG, MANIFEST), RemoveTags(("v1-hotfix",)))
    assert plan.record.original_tags == ["v1", "v1-hotfix"]
    assert plan.record.status is ImageStatus.QUARANTINED
    assert plan.record.fingerprint == BLOCK.fingerprint  # the decision stands
    assert [h.action for h in plan.record.history] == ["retag_blocked"]
    assert (plan.action, plan.expected_version, plan.previous, plan.tags, plan.metric) == (
        Action.RETAG_BLOCKED, 3, ImageStatus.QUARANTINED, ("v1-hotfix",), "RetagsBlocked"
    )  # fmt: skip


def test_retag_blocked_only_removes_when_the_quarantine_tag_holds_the_image() -> None:
    stored = record(ImageStatus.QUARANTINED, BLOCK.fingerprint, quarantine_tag=QUARANTINE_TAG)
    plan = transitions.retag_blocked(CTX, stored, info(QUARANTINE_TAG, "x"), None, ["x"], TRIGGER)
    assert plan.effects == (RemoveTags(("x",)),)


def test_retag_blocked_names_the_policy_quarantine_tag_when_none_was_recorded() -> None:
    stored = record(ImageStatus.QUARANTINED, BLOCK.fingerprint)  # e.g. a child blocked through its index
    plan = transitions.retag_blocked(CTX, stored, info("v1-amd64"), MANIFEST, ["v1-amd64"], TRIGGER)
    assert plan.record.quarantine_tag == QUARANTINE_TAG
    assert plan.effects[0] == AddTag(QUARANTINE_TAG, MANIFEST)


def test_retag_blocked_never_plans_to_remove_every_tag() -> None:
    stored = record(ImageStatus.QUARANTINED, BLOCK.fingerprint, quarantine_tag=QUARANTINE_TAG)
    plan = transitions.retag_blocked(CTX, stored, info("v1"), None, ["v1"], TRIGGER)
    removed = {tag for effect in plan.effects if isinstance(effect, RemoveTags) for tag in effect.tags}
    added = {effect.tag for effect in plan.effects if isinstance(effect, AddTag)}
    assert (set(info("v1").tags) | added) - removed


@pytest.mark.parametrize("stored", [None, record(ImageStatus.PASSED, PASS.fingerprint)], ids=["new", "known"])
def test_skipped_plan_is_recorded_but_not_announced(stored: ImageRecord | None) -> None:
    plan = transitions.skipped(CTX, IMAGE, stored, "image no longer exists", TRIGGER)
    assert plan.announce is False
    assert plan.effects == ()
    assert plan.record.status is ImageStatus.SKIPPED
    assert plan.expected_version == (stored.version if stored else 0)
    assert plan.previous == (stored.status if stored else None)
    assert (plan.action, plan.reason, plan.metric) == (Action.SKIPPED, "image no longer exists", "EventsSkipped")
    assert [h.action for h in plan.record.history] == ["skipped"]
    assert plan.record.fingerprint == (stored.fingerprint if stored else None)  # no decision: identity unchanged


def test_scan_failed_plan_records_and_announces() -> None:
    failed = decision(Verdict.PASS, note="scan FAILED")
    plan = transitions.scan_failed(CTX, case(None, failed, ["v1"]), "scan FAILED: allowed")
    assert plan.effects == ()
    assert plan.record.status is ImageStatus.SCAN_FAILED
    assert plan.record.original_tags == ["v1"]
    assert plan.record.fingerprint == failed.fingerprint
    assert (plan.action, plan.reason, plan.announce) == (Action.SCAN_FAILED, "scan FAILED: allowed", True)
