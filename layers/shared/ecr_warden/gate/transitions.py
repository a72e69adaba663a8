"""The life of an image record, as pure functions: which step a decision takes an image through, and the plan
(record to write, ECR effects, announcement) each step needs. No I/O: every input is given, so every transition
is tested without AWS.

States: PENDING → PASSED | TAGGED | QUARANTINED | ARCHIVED | AUDITED | SCAN_FAILED | SKIPPED; a blocked image
goes to RELEASED (admin or auto-release) or stays blocked; EXEMPT holds until its expiry.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from ecr_warden.contracts.decision import Action
from ecr_warden.domain.findings import top
from ecr_warden.domain.images import ImageInfo, ImageRef, Manifest
from ecr_warden.domain.records import BLOCKED, ImageRecord, ImageStatus, merge_tags
from ecr_warden.gate.context import Case, GateContext, Trigger
from ecr_warden.gate.evaluate import Decision, Verdict
from ecr_warden.gate.plan import AddTag, Archive, Effect, Plan, RemoveTags


class Step(StrEnum):
    VERIFY_QUARANTINE = "verify_quarantine"  # same decision, quarantined: keep deployable tags off
    COMPLETE = "complete"  # same decision, archived or tagged: finish what a failed run left undone
    KEPT_RELEASED = "kept_released"  # same decision, released by an admin: nothing to do
    DUPLICATE = "duplicate"  # same decision (duplicate or replayed event): nothing to do
    EXEMPT = "exempt"  # the image is exempt until a later time: record, do not act
    NOTE_KEPT_RELEASED = "note_kept_released"  # blocking findings the admin already released: record only
    NOTE_UPDATED = "note_updated"  # still blocked or tagged, other findings: record and announce
    BLOCK = "block"
    AUTO_RELEASE = "auto_release"
    NOTE_NOW_COMPLIANT = "note_now_compliant"  # blocked image no longer breaks the policy: a human releases
    TAG = "tag"
    PASS = "pass"  # noqa: S105 - a step, not a password


def next_step(case: Case, now: datetime, auto_release_on_close: bool) -> Step:
    """The state machine: from the stored record and a new decision, the one step to take."""
    record, decision, previous = case.record, case.decision, case.previous
    until = record.exempt_until if record and previous is ImageStatus.EXEMPT else None
    expired = until is not None and until <= now  # an exemption that ran out decides again, same findings or not
    if record and record.fingerprint == decision.fingerprint and previous is not ImageStatus.PENDING and not expired:
        return _same_decision(previous)
    if until and until > now:
        return Step.EXEMPT
    if decision.verdict is Verdict.BLOCK:
        return _blocking(record, decision)
    if previous in BLOCKED:
        return Step.AUTO_RELEASE if auto_release_on_close and not decision.audit else Step.NOTE_NOW_COMPLIANT
    if decision.verdict is Verdict.TAG:
        return Step.NOTE_UPDATED if previous is ImageStatus.TAGGED else Step.TAG
    return Step.PASS


def _blocking(record: ImageRecord | None, decision: Decision) -> Step:
    if record and record.status is ImageStatus.RELEASED and record.released_fingerprint == decision.fingerprint:
        return Step.NOTE_KEPT_RELEASED  # the admin released exactly these findings
    return Step.NOTE_UPDATED if record and record.status in BLOCKED else Step.BLOCK


def _same_decision(previous: ImageStatus | None) -> Step:
    if previous is ImageStatus.QUARANTINED:
        return Step.VERIFY_QUARANTINE
    if previous in (ImageStatus.ARCHIVED, ImageStatus.TAGGED):
        return Step.COMPLETE
    if previous is ImageStatus.RELEASED:
        return Step.KEPT_RELEASED
    return Step.DUPLICATE


# What the steps that change nothing in ECR say: (action, outcome reason) of a standing decision, and (action,
# reason or None for the decision's own, announce?) of a decision that is only recorded.
STANDING: dict[Step, tuple[Action, str]] = {
    Step.KEPT_RELEASED: (Action.KEPT_RELEASED, "released by an admin; findings unchanged"),
    Step.DUPLICATE: (Action.NOOP, "decision unchanged (duplicate or replayed event)"),
}
NOTES: dict[Step, tuple[Action, str | None, bool]] = {
    Step.EXEMPT: (Action.NOOP, None, False),
    Step.NOTE_KEPT_RELEASED: (Action.KEPT_RELEASED, "released by an admin; findings unchanged since", False),
    Step.NOTE_UPDATED: (Action.UPDATED, None, True),
    Step.NOTE_NOW_COMPLIANT: (Action.NOW_COMPLIANT, "no longer breaks the policy; release is left to an admin", True),
}


def note_of(step: Step, case: Case) -> tuple[Action, str, bool]:
    action, reason, announce = NOTES[step]
    if step is Step.EXEMPT and case.record is not None:
        reason = f"image exempt until {case.record.exempt_until}"
    return action, reason or case.decision.reasons[0], announce


# -- records ----------------------------------------------------------------------------------------------------


def fresh(image: ImageRef, record: ImageRecord | None, now: datetime) -> ImageRecord:
    """A copy of the stored record to change, or a new PENDING one."""
    if record:
        return record.model_copy(deep=True)
    return ImageRecord(repository=image.repository, digest=image.digest, status=ImageStatus.PENDING, updated_at=now)


def decided(
    ctx: GateContext, base: ImageRecord, case: Case, status: ImageStatus, action: Action, reason: str | None = None
) -> ImageRecord:
    """The record after the case's decision: its status, the decision's identity and findings, one more history
    entry (the decision's own reason unless another is given)."""
    decision = case.decision
    updated = base.model_copy(
        update={
            "status": status,
            "updated_at": ctx.now(),
            "verdict": decision.verdict.value,
            "rule": decision.rule,
            "fingerprint": decision.fingerprint,
            "severity_counts": decision.severity_counts,
            "top_findings": top(decision.counted),
            "findings_total": decision.findings_total,
            "counted_ids": [f.id for f in decision.counted],
            "awaiting_findings": None,  # any decision ends a wait for lagging findings
        }
    )
    updated.remember(ctx.entry(action, status, reason or decision.reasons[0], case.trigger))
    return updated


def decision_of(ctx: GateContext, record: ImageRecord) -> Decision:
    """The decision a stored record stands for (to act on an index with its child's decision, to announce)."""
    rule = ctx.policy.rule_for(record.repository)
    return Decision(
        verdict=Verdict(record.verdict or "PASS"),
        rule=record.rule,
        block_method=rule.block_method if rule else "quarantine",
        audit=ctx.audit_mode or bool(rule and rule.audit),
        reasons=[h.reason for h in record.history[-1:]] or ["recorded decision"],
        severity_counts=record.severity_counts,
        counted=list(record.top_findings),
        exempted=[],
        findings_total=record.findings_total,
        pinned_fingerprint=record.fingerprint,
    )


# -- plans ------------------------------------------------------------------------------------------------------


def _plan(case: Case, record: ImageRecord, action: Action, tags: list[str] | None = None, **changes: Any) -> Plan:
    """A plan for the case; `changes` sets the Plan's other fields (effects, reason, announce, metric)."""
    plan = Plan(
        record=record,
        expected_version=case.version,
        action=action,
        previous=case.previous,
        reason=case.decision.reasons[0],
        tags=tuple(tags) if tags is not None else None,
    )
    return replace(plan, **changes)


def note(ctx: GateContext, case: Case, action: Action, reason: str, announce: bool) -> Plan:
    """Record a decision that changes nothing in ECR (the status stays)."""
    assert case.record is not None
    updated = decided(ctx, case.record, case, case.record.status, action, reason)
    return _plan(case, updated, action, reason=reason, announce=announce)


def quarantine(ctx: GateContext, case: Case, info: ImageInfo, manifest: Manifest, deployable: list[str]) -> Plan:
    """Keep the image under the quarantine tag and take its deployable tags away (recorded for release)."""
    recorded = case.record.quarantine_tag if case.record else None  # e.g. one nobody could take first
    quarantine_tag = recorded if recorded and recorded in info.tags else ctx.policy.quarantine_tag(case.image.digest)
    base = fresh(case.image, case.record, ctx.now())
    # what the image has now, not tags earlier events named (a release must not bring back a tag it had lost);
    # a quarantine already in place keeps what it recorded
    base.original_tags = merge_tags(base.original_tags if base.status in BLOCKED else [], deployable)
    base.quarantine_tag = quarantine_tag
    updated = decided(ctx, base, case, ImageStatus.QUARANTINED, Action.QUARANTINED)
    effects: list[Effect] = [] if quarantine_tag in info.tags else [AddTag(quarantine_tag, manifest)]
    effects.append(RemoveTags(tuple(deployable)))
    return _plan(
        case, updated, Action.QUARANTINED, deployable, effects=tuple(effects), metric="ImagesQuarantined",
        claims=tuple(deployable), reread_tags=True,
    )  # fmt: skip


def archive(ctx: GateContext, case: Case, deployable: list[str]) -> Plan:
    base = fresh(case.image, case.record, ctx.now())
    base.original_tags = merge_tags(base.original_tags, deployable)
    updated = decided(ctx, base, case, ImageStatus.ARCHIVED, Action.ARCHIVED)
    return _plan(case, updated, Action.ARCHIVED, deployable, effects=(Archive(),), metric="ImagesArchived")


def tag(ctx: GateContext, case: Case, manifest: Manifest) -> Plan:
    marker = ctx.policy.marker_tag(case.image.digest)
    base = fresh(case.image, case.record, ctx.now())
    base.original_tags, base.marker_tag = merge_tags(base.original_tags, case.tags), marker
    updated = decided(ctx, base, case, ImageStatus.TAGGED, Action.TAGGED)
    effects = (AddTag(marker, manifest),)
    return _plan(case, updated, Action.TAGGED, case.tags, effects=effects, metric="ImagesTagged")


def passed(ctx: GateContext, case: Case, marker_removed: bool) -> Plan:
    base = fresh(case.image, case.record, ctx.now())
    if marker_removed:
        base.marker_tag = None
    base.original_tags = merge_tags(base.original_tags, case.tags)
    updated = decided(ctx, base, case, ImageStatus.PASSED, Action.PASSED)
    return _plan(case, updated, Action.PASSED)


def audited(ctx: GateContext, case: Case, tags: list[str], action: Action) -> Plan:
    """Audit mode: decided and reported, nothing changed in ECR."""
    base = fresh(case.image, case.record, ctx.now())
    base.original_tags = merge_tags(base.original_tags, tags)
    base.audit_action = action.value
    reason = "audit mode, nothing changed: " + case.decision.reasons[0]
    updated = decided(ctx, base, case, ImageStatus.AUDITED, action, reason)
    return _plan(case, updated, action, tags)


def retag_blocked(
    ctx: GateContext, record: ImageRecord, info: ImageInfo, manifest: Manifest | None, leftover: list[str],
    trigger: Trigger,
) -> Plan:  # fmt: skip
    """A quarantined digest got a deployable tag again: record it for release, then take it off."""
    quarantine_tag = record.quarantine_tag or ctx.policy.quarantine_tag(record.digest)
    updated = record.model_copy(
        update={
            "original_tags": merge_tags(record.original_tags, leftover),
            "updated_at": ctx.now(),
            "quarantine_tag": quarantine_tag,
        }
    )
    updated.remember(ctx.entry(Action.RETAG_BLOCKED, record.status, f"removed tag(s) {leftover}", trigger))
    effects: list[Effect] = []
    if quarantine_tag not in info.tags and manifest is not None:
        effects.append(AddTag(quarantine_tag, manifest))
    if quarantine_tag in info.tags or effects:  # never remove the last tag (that deletes the image)
        effects.append(RemoveTags(tuple(leftover)))
    return Plan(
        record=updated,
        expected_version=record.version,
        action=Action.RETAG_BLOCKED,
        previous=record.status,
        reason=f"removed {leftover}",
        effects=tuple(effects),
        tags=tuple(leftover),
        metric="RetagsBlocked",
        claims=tuple(leftover),
    )


def skipped(ctx: GateContext, image: ImageRef, record: ImageRecord | None, reason: str, trigger: Trigger) -> Plan:
    """The image or repository is gone: record it once and stop (no error, no retry loop)."""
    base = fresh(image, record, ctx.now())
    base.status, base.updated_at = ImageStatus.SKIPPED, ctx.now()
    base.remember(ctx.entry(Action.SKIPPED, ImageStatus.SKIPPED, reason, trigger))
    return Plan(
        record=base,
        expected_version=record.version if record else 0,
        action=Action.SKIPPED,
        previous=record.status if record else None,
        reason=reason,
        announce=False,
        metric="EventsSkipped",
    )


def scan_failed(ctx: GateContext, case: Case, reason: str) -> Plan:
    base = fresh(case.image, case.record, ctx.now())
    base.original_tags = merge_tags(base.original_tags, case.tags)
    updated = decided(ctx, base, case, ImageStatus.SCAN_FAILED, Action.SCAN_FAILED, reason)
    return _plan(case, updated, Action.SCAN_FAILED, reason=reason)
