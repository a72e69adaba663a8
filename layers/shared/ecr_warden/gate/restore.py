"""Undoing a block: the record says RELEASED first, then the recorded tags come back exactly as they were.

Write-ahead: the pushes of the restored tags find the image released, so they are not undone as re-tags of a
quarantined digest. Running it again finishes whatever an interrupted release left undone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ecr_warden.contracts.decision import Action
from ecr_warden.domain.images import ImageInfo, ImageRef, Manifest
from ecr_warden.domain.records import ImageRecord, ImageStatus, PendingAnnouncement
from ecr_warden.errors import TagConflictError
from ecr_warden.gate import transitions
from ecr_warden.gate.context import Case, Outcome, Trigger
from ecr_warden.gate.effects import PartialActionError
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


@dataclass(frozen=True)
class Restoration:
    """What ECR looks like after putting a released image's tags back."""

    restored: list[str] = field(default_factory=list)  # recorded tags on the image now
    conflicts: dict[str, str | None] = field(default_factory=dict)  # tag left out -> the digest it is on (None: none)
    gone: bool = False  # the image no longer exists: nothing can be restored
    archive: str | None = None  # released from ARCHIVE: the image's storage status (ACTIVATING until ECR finishes)
    kept: str | None = None  # ecr-warden's own tag, kept because it is the image's last tag

    @property
    def complete(self) -> bool:
        return not self.gone and not self.conflicts

    def summary(self) -> str:
        """What the admin reads: what is back, what is not and why, and what to do about it."""
        if self.gone:
            return "the image no longer exists in ECR: nothing was restored (push it again to use it)"
        parts = [f"restored: {', '.join(self.restored) or 'none'}"]
        elsewhere = [f"{tag} -> {now}" for tag, now in self.conflicts.items() if now]
        vanished = [tag for tag, now in self.conflicts.items() if not now]
        if elsewhere:
            parts.append(f"not restored (now on another image): {', '.join(elsewhere)}")
        if vanished:
            parts.append(f"not restored (the tag no longer exists): {', '.join(vanished)}")
        if self.conflicts:
            parts.append("to deploy this image use its digest or push a new tag onto it")
        if self.kept:
            parts.append(f"kept {self.kept}: it is the image's last tag (removing it would delete the image)")
        if self.archive == "ACTIVATING":
            parts.append("restore from ARCHIVE started: the image can be pulled once ECR shows it ACTIVE (~20 min)")
        return "; ".join(parts)


def finish(actor: Actor, record: ImageRecord, decision: Decision, trigger: Trigger) -> Outcome:
    """Put the tags back and announce what ECR now looks like, then clear the announcement the record owes.
    Idempotent: what an earlier, interrupted run restored stays restored."""
    ctx, store, pending = actor.ctx, actor.ports.store, record.pending_announcement
    reason = pending.reason if pending else "released"
    restoration = restore_in_ecr(actor.ports.registry, record)
    action = Action.RELEASED if restoration.complete else Action.RELEASE_INCOMPLETE
    updated = record.model_copy(update={"pending_announcement": None})
    if not restoration.complete:
        updated.remember(ctx.entry(Action.RELEASE_CONFLICTS, ImageStatus.RELEASED, restoration.summary(), trigger))
    reason += f"; {restoration.summary()}"
    metrics.add_metric(name="ImagesReleased", unit=MetricUnit.Count, value=1)
    logger.info(
        "released image", repository=record.repository, digest=record.digest, restored=restoration.restored,
        conflicts=restoration.conflicts, gone=restoration.gone,
    )  # fmt: skip
    previous = pending.previous if pending else None
    # under the debt's decision_id: a retry after the write below failed announces again as the same decision,
    # which consumers deduplicate (a new id each run was a second Slack message for one release)
    decision_id = pending.decision_id if pending else None
    not_restored = dict.fromkeys(record.original_tags) if restoration.gone else restoration.conflicts
    plan = Plan(updated, record.version, action, previous, reason, tags=tuple(restoration.restored),
                not_restored=not_restored, decision_id=decision_id)  # fmt: skip
    detail = actor.executor.announce(plan, decision, trigger)
    updated = store.save(updated, record.version)  # the debt is paid
    return Outcome(record.repository, record.digest, action, reason, updated.status, detail)


def restore_in_ecr(registry: Registry, record: ImageRecord) -> Restoration:
    """Idempotent: put back the recorded tags that are free (a tag now on another image is not moved), then drop
    ecr-warden's own tag, but never as the image's last tag. Says where every recorded tag left out points now."""
    image = ImageRef(record.repository, record.digest)
    info = registry.describe(image.repository, image.digest)
    if info is None:
        return Restoration(gone=True)
    if record.released_from is ImageStatus.ARCHIVED:
        return _unarchive(registry, record, info)
    after, conflicts = _put_back(registry, record, info)
    if after is None:
        return Restoration(gone=True)
    restored = [tag for tag in record.original_tags if tag in after.tags]
    own = record.marker_tag if record.released_from is ImageStatus.TAGGED else record.quarantine_tag
    kept = own is not None and not remove_own_tag(registry, image, own, after)
    return Restoration(restored, conflicts, kept=own if kept else None)


def _unarchive(registry: Registry, record: ImageRecord, info: ImageInfo) -> Restoration:
    """ECR restores from ARCHIVE asynchronously (ACTIVATING, then ACTIVE); archiving kept the tags, so a recorded
    tag missing from the image was moved or deleted meanwhile and is reported, not put back."""
    status = info.status
    if status == "ARCHIVED":
        registry.restore(record.repository, record.digest)
        status = "ACTIVATING"
    restored = [tag for tag in record.original_tags if tag in info.tags]
    conflicts = {
        tag: registry.digest_of(record.repository, tag) for tag in record.original_tags if tag not in info.tags
    }
    return Restoration(restored, conflicts, archive=status)


def _put_back(
    registry: Registry, record: ImageRecord, info: ImageInfo
) -> tuple[ImageInfo | None, dict[str, str | None]]:
    """Put each missing recorded tag back if it is free; then read the image again, because ECR has no conditional
    PutImage: a push between the check and the put may have won. Returns the image as it is now (None: gone) and
    the tags left out with where they point."""
    repository, digest = record.repository, record.digest
    conflicts: dict[str, str | None] = {}
    missing = [tag for tag in record.original_tags if tag not in info.tags]
    manifest: Manifest | None = None
    for tag in missing:
        current = registry.digest_of(repository, tag)
        if current not in (None, digest):
            conflicts[tag] = current
            continue
        manifest = manifest or registry.manifest(repository, digest)
        if manifest is None:
            return None, conflicts
        try:
            registry.add_tag(repository, digest, manifest, tag)
        except TagConflictError:
            conflicts[tag] = registry.digest_of(repository, tag)
    if not missing:
        return info, conflicts
    after = registry.describe(repository, digest)
    for tag in missing:
        if after is not None and tag not in after.tags and tag not in conflicts:
            conflicts[tag] = registry.digest_of(repository, tag)  # a concurrent push took it after our put
    return after, conflicts


def remove_own_tag(registry: Registry, image: ImageRef, tag: str, info: ImageInfo | None) -> bool:
    """Take ecr-warden's own tag (marker or quarantine tag) off this digest, but only if it is still on it and never
    as its last tag (that would delete the image, e.g. once `latest` moved to a newer build). False: kept.
    Raises when ECR refuses: the record still names the tag, and a retry removes it."""
    if info is None or tag not in info.tags:
        return True  # gone with the image, or no longer on it: nothing of ours to remove
    if len(info.tags) == 1:
        return False
    failures = registry.remove_tags(image.repository, [tag])
    if failures:
        raise PartialActionError(f"{image}: could not remove {tag}: {'; '.join(failures)}")
    return True
