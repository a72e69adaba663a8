"""Carrying out a plan: write the record ahead, change ECR, count it, announce it. The only gate module that
calls the registry's write methods.

- A quarantine tag someone else took first (anyone who can push may put `quarantined-<12 hex>` on any image of
  an IMMUTABLE repository) never stops a quarantine: the image is kept under a tag nobody can compute in advance,
  recorded before it is added (so a retry uses it and a push of it is recognised as ecr-warden's own).
- A run that fails after the write-ahead records what it left undone (`incomplete`) and, when its decision was
  not announced yet, the announcement (`pending_announcement`), then raises: the retry finishes both, once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from ecr_warden.contracts.decision import DecisionDetail
from ecr_warden.domain.images import ImageRef
from ecr_warden.domain.records import HistoryEntry, ImageRecord, PendingAnnouncement, merge_tags
from ecr_warden.errors import ConcurrentUpdateError, TagConflictError, WardenError
from ecr_warden.gate.announce import decision_detail
from ecr_warden.gate.context import GateContext, Outcome, Trigger
from ecr_warden.gate.evaluate import Decision
from ecr_warden.gate.plan import AddTag, Archive, Effect, Plan, RemoveTags
from ecr_warden.gate.ports import Ports
from ecr_warden.observability import MetricUnit, logger, metrics

QUARANTINE_TAG_TAKEN = "quarantine_tag_taken"  # history only: the usual quarantine tag is on another image
OWN_TAG_FIELDS = ("quarantine_tag", "marker_tag")  # the record fields naming tags ecr-warden puts on an image


class PartialActionError(WardenError):
    """Some of an action's ECR calls failed; the event is retried and the retry completes it."""


@dataclass
class Executor:
    ctx: GateContext
    ports: Ports

    def run(self, plan: Plan, decision: Decision, trigger: Trigger) -> Outcome:
        record = _ahead(plan.record)
        # the outbox: the announcement is owed from the moment ECR may change (an earlier debt is never replaced)
        owes = plan.announce and bool(plan.effects) and record.pending_announcement is None
        if owes:
            plan = replace(plan, decision_id=plan.decision_id or str(uuid.uuid4()))
            record = record.model_copy(update={"pending_announcement": _owed(plan, record)})
        saved = self.ports.store.save(record, plan.expected_version, plan.claims)  # write-ahead: before ECR
        image = ImageRef(record.repository, record.digest)
        saved, late = self._apply_all(image, saved, plan, trigger)
        if late and plan.tags is not None:
            plan = replace(plan, tags=(*plan.tags, *late))
        try:
            if plan.metric:
                metrics.add_metric(name=plan.metric, unit=MetricUnit.Count, value=1)
            if plan.effects:
                logger.info(
                    "image changed",
                    repository=image.repository,
                    digest=image.digest,
                    action=plan.action.value,
                    effects=[type(effect).__name__ for effect in plan.effects],
                )
            detail = self.announce(replace(plan, record=saved), decision, trigger) if plan.announce else None
        except Exception as exc:
            self._left_undone(saved, plan, exc)
            raise
        if owes:
            self._sent(saved)
        return Outcome(image.repository, image.digest, plan.action, plan.reason, record.status, detail)

    def _sent(self, saved: ImageRecord) -> None:
        """Clear the debt, also when a duplicate delivery wrote the record meanwhile. If this fails, the error makes
        Lambda retry: the retry finds the debt and sends the announcement again under the same decision_id
        (consumers deduplicate on it), then clears it."""
        debt, record = saved.pending_announcement, saved
        for _ in range(3):
            try:
                self.ports.store.save(record.model_copy(update={"pending_announcement": None}), record.version)
                return
            except ConcurrentUpdateError:
                current = self.ports.store.get(record.repository, record.digest)
                if current is None or current.pending_announcement != debt:
                    return  # paid, or replaced by a newer decision's own debt
                record = current
        raise ConcurrentUpdateError(f"{saved.repository}@{saved.digest}: could not clear a sent announcement")

    def _apply_all(
        self, image: ImageRef, record: ImageRecord, plan: Plan, trigger: Trigger
    ) -> tuple[ImageRecord, list[str]]:
        """The plan's ECR effects in order; returns the record as last written and the tags found late."""
        latest = [record]  # _add_own_tag and _remove_current may write the record again
        late: list[str] = []
        try:
            for effect in plan.effects:
                field = _own_tag_field(latest[-1], effect)
                if field is not None and isinstance(effect, AddTag):
                    self._add_own_tag(image, latest, effect, field, trigger)
                elif isinstance(effect, RemoveTags) and plan.reread_tags:
                    late = self._remove_current(image, latest, effect)
                else:
                    self.apply(image, effect)
        except Exception as exc:
            self._left_undone(latest[-1], plan, exc)
            raise
        return latest[-1], late

    def _remove_current(self, image: ImageRef, latest: list[ImageRecord], effect: RemoveTags) -> list[str]:
        """Remove the deployable tags the image has now. A tag pushed after the plan read the image (its push
        event found no record to act on) is recorded first, for release, then removed with the others; a tag that
        moved to another digest since is not this image's to remove. Returns the tags found late."""
        info = self.ports.registry.describe(image.repository, image.digest)
        if info is None:
            return []  # deleted meanwhile: nothing left to take a tag from
        record = latest[-1]
        current = [t for t in info.tags if not self.ctx.is_own_tag(t, image.digest, record)]
        late = [t for t in current if t not in effect.tags]
        if late:
            logger.warning("tags pushed during the quarantine", repository=image.repository, tags=late)
            metrics.add_metric(name="LateTagsQuarantined", unit=MetricUnit.Count, value=len(late))
            updated = record.model_copy(update={"original_tags": merge_tags(record.original_tags, late)})
            latest.append(self.ports.store.save(updated, record.version, late))
        self.apply(image, RemoveTags(tuple(current)))
        return late

    def _add_own_tag(
        self, image: ImageRef, latest: list[ImageRecord], effect: AddTag, field: str, trigger: Trigger
    ) -> None:
        """Add the quarantine (or marker) tag; when another image holds it, add one nobody can take first instead
        (recorded before it is added). Raises when none could be added: nothing is removed then."""
        registry, record = self.ports.registry, latest[-1]
        try:
            registry.add_tag(image.repository, image.digest, effect.manifest, effect.tag)
            return
        except TagConflictError:
            fallback = self.ctx.policy.fallback_own_tag(effect.tag)
        reason = f"{effect.tag} is on another image: {field.replace('_', ' ')} is {fallback}"
        logger.warning("own tag taken", repository=image.repository, digest=image.digest, tag=effect.tag)
        metrics.add_metric(name="QuarantineTagsTaken", unit=MetricUnit.Count, value=1)
        updated = record.model_copy(update={field: fallback})
        updated.remember(
            HistoryEntry(at=self.ctx.now(), action=QUARANTINE_TAG_TAKEN, status=record.status, reason=reason,
                         trigger=trigger.name, event_id=trigger.event_id)
        )  # fmt: skip
        latest.append(self.ports.store.save(updated, record.version))
        registry.add_tag(image.repository, image.digest, effect.manifest, fallback)

    def _left_undone(self, saved: ImageRecord, plan: Plan, error: Exception) -> None:
        """Best effort: say in the record what this run could not finish, and keep its announcement for the retry
        (the error itself is raised either way)."""
        pending = saved.pending_announcement
        if plan.announce and (pending is None or pending.fingerprint != saved.fingerprint):
            pending = _owed(plan, saved)
        incomplete = f"{plan.action.value} not completed: {type(error).__name__}: {error}"[:500]
        marked = saved.model_copy(update={"pending_announcement": pending, "incomplete": incomplete})
        try:
            self.ports.store.save(marked, saved.version)
        except Exception:  # the record keeps the write-ahead; the retry still completes ECR
            logger.exception("could not record an incomplete action", repository=saved.repository, digest=saved.digest)

    def apply(self, image: ImageRef, effect: Effect) -> None:
        registry = self.ports.registry
        if isinstance(effect, AddTag):
            registry.add_tag(image.repository, image.digest, effect.manifest, effect.tag)
        elif isinstance(effect, RemoveTags):
            if not effect.tags:
                return
            failures = registry.remove_tags(image.repository, list(effect.tags))
            if failures:
                raise PartialActionError(f"{image}: could not remove tags: {'; '.join(failures)}")
        elif isinstance(effect, Archive):
            registry.archive(image.repository, image.digest)

    def announce(self, plan: Plan, decision: Decision, trigger: Trigger) -> DecisionDetail:
        detail = decision_detail(self.ctx, plan, decision, trigger)
        self.ports.announcer.publish(detail)
        return detail


def _owed(plan: Plan, record: ImageRecord) -> PendingAnnouncement:
    return PendingAnnouncement(
        fingerprint=record.fingerprint,
        action=plan.action.value,
        previous=plan.previous,
        tags=list(plan.tags) if plan.tags is not None else None,
        reason=plan.reason,
        decision_id=plan.decision_id,
        tag_now_on=plan.tag_now_on,
    )


def _own_tag_field(record: ImageRecord, effect: Effect) -> str | None:
    """Which own tag of the record this effect adds, if any."""
    if not isinstance(effect, AddTag):
        return None
    return next((f for f in OWN_TAG_FIELDS if getattr(record, f) == effect.tag), None)


def _ahead(record: ImageRecord) -> ImageRecord:
    """The record to write ahead: nothing left undone yet; an announcement still owed stays only while it is
    this decision's (a new decision is announced as itself)."""
    pending = record.pending_announcement
    if pending is not None and pending.fingerprint != record.fingerprint:
        pending = None
    if pending is record.pending_announcement and record.incomplete is None:
        return record
    return record.model_copy(update={"pending_announcement": pending, "incomplete": None})
