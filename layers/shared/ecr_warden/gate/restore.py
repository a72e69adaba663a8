"""Undoing a block: the record says RELEASED first, then the recorded tags come back exactly as they were.

Write-ahead: the pushes of the restored tags find the image released, so they are not undone as re-tags of a
quarantined digest. Running it again finishes whatever an interrupted release left undone.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from ecr_warden.contracts.decision import Action
from ecr_warden.domain.images import ImageRef
from ecr_warden.domain.records import ImageRecord, ImageStatus, PendingAnnouncement
from ecr_warden.errors import TagConflictError
from ecr_warden.gate import transitions
from ecr_warden.gate.context import Case, Outcome, Trigger
from ecr_warden.gate.evaluate import Decision
from ecr_warden.gate.plan import Plan
from ecr_warden.gate.ports import Registry
from ecr_warden.observability import MetricUnit, logger, metrics

if TYPE_CHECKING:
    from ecr_warden.gate.acting import Actor


def release(
    actor: Actor, record: ImageRecord, decision: Decision, reason: str, trigger: Trigger, by_admin: bool = True
) -> Outcome:
    """Release, then say exactly what ECR now looks like: `released` when every recorded tag is back,
    `release_incomplete` (with each tag left out and where it points now) when some are on other images.
    Only an admin's release pins the findings it released (`released_fingerprint`): an auto-release happened
    because the findings closed, so the same finding reopening blocks again. The write-ahead record carries the
    announcement it owes, so an interrupted release is finished and announced, once, when it runs again."""
    ctx, store = actor.ctx, actor.ports.store
    case = Case(ImageRef(record.repository, record.digest), record.original_tags, decision, record, trigger)
    updated = transitions.decided(ctx, record, case, ImageStatus.RELEASED, Action.RELEASED, reason)
    updated.released_fingerprint = record.fingerprint if by_admin else None
    updated.released_from = record.status
    updated.pending_announcement = PendingAnnouncement(
        fingerprint=updated.fingerprint, action=Action.RELEASED.value, previous=record.status, reason=reason,
        decision_id=str(uuid.uuid4()),
    )  # fmt: skip
    return finish(actor, store.save(updated, record.version), decision, trigger)


def finish(actor: Actor, record: ImageRecord, decision: Decision, trigger: Trigger) -> Outcome:
    """Put the tags back and announce what ECR now looks like, then clear the announcement the record owes.
    Idempotent: what an earlier, interrupted run restored stays restored."""
    ctx, store, pending = actor.ctx, actor.ports.store, record.pending_announcement
    reason = pending.reason if pending else "released"
    restored, conflicts = restore_in_ecr(actor.ports.registry, record)
    action = Action.RELEASE_INCOMPLETE if conflicts else Action.RELEASED
    updated = record.model_copy(update={"pending_announcement": None})
    if conflicts:
        not_restored = "not restored (now on another image): " + ", ".join(
            f"{tag} -> {digest or 'another image'}" for tag, digest in conflicts.items()
        )
        updated.remember(ctx.entry(Action.RELEASE_CONFLICTS, ImageStatus.RELEASED, not_restored, trigger))
        reason += f"; restored: {', '.join(restored) or 'none'}; {not_restored}"
    metrics.add_metric(name="ImagesReleased", unit=MetricUnit.Count, value=1)
    logger.info(
        "released image", repository=record.repository, digest=record.digest, restored=restored, conflicts=conflicts
    )
    previous = pending.previous if pending else None
    # under the debt's decision_id: a retry after the write below failed announces again as the same decision,
    # which consumers deduplicate (a new id each run was a second Slack message for one release)
    decision_id = pending.decision_id if pending else None
    plan = Plan(updated, record.version, action, previous, reason, tags=tuple(restored), not_restored=conflicts,
                decision_id=decision_id)  # fmt: skip
    detail = actor.executor.announce(plan, decision, trigger)
    updated = store.save(updated, record.version)  # the debt is paid
    return Outcome(record.repository, record.digest, action, reason, updated.status, detail)


def restore_in_ecr(registry: Registry, record: ImageRecord) -> tuple[list[str], dict[str, str | None]]:
    """Idempotent: put back the recorded tags that are free (a tag now on another image is not moved), then
    drop the quarantine tag, but only once another tag holds the image. Returns the restored tags and, for each
    tag left out, the digest it points at now (None when ECR refused without saying)."""
    repository, digest = record.repository, record.digest
    if record.released_from is ImageStatus.ARCHIVED:
        info = registry.describe(repository, digest)
        if info is not None and info.status == "ARCHIVED":
            registry.restore(repository, digest)
        return list(record.original_tags), {}
    if record.released_from is ImageStatus.TAGGED and record.marker_tag:
        registry.remove_tags(repository, [record.marker_tag])
        return list(record.original_tags), {}
    manifest = registry.manifest(repository, digest) if record.released_from is ImageStatus.QUARANTINED else None
    if manifest is None:
        return [], {}
    restored: list[str] = []
    conflicts: dict[str, str | None] = {}
    for tag in record.original_tags:
        current = registry.digest_of(repository, tag)
        if current not in (None, digest):
            conflicts[tag] = current
            continue
        try:
            if current is None:
                registry.add_tag(repository, digest, manifest, tag)
            restored.append(tag)
        except TagConflictError:
            conflicts[tag] = registry.digest_of(repository, tag)
    # only while it is still on this digest (a MUTABLE repository may have moved it): removing it by name
    # elsewhere could delete another image
    if record.quarantine_tag and restored and registry.digest_of(repository, record.quarantine_tag) == digest:
        registry.remove_tags(repository, [record.quarantine_tag])
    return restored, conflicts
