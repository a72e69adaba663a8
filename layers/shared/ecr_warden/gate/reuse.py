"""A tag a blocked image gave up is pushed onto another image. In an IMMUTABLE repository quarantine frees the
tag, so someone can push a different image as `v1.3.0`; in a MUTABLE one CI can move `latest`. Either way people
must hear of it: the quarantined image's record says so, and an announcement names both digests.

Exactly once: the announcement's decision_id is derived from (holder, tag, new digest), so a retry after any
failure announces again as the same decision, which consumers deduplicate. Events arrive late and twice, so only a
push whose tag still points at the pushed digest is news."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ecr_warden.contracts.decision import Action
from ecr_warden.domain.images import ImageRef
from ecr_warden.domain.records import BLOCKED, ImageRecord, ImageStatus
from ecr_warden.errors import ConcurrentUpdateError
from ecr_warden.gate import transitions
from ecr_warden.gate.context import Outcome, Trigger
from ecr_warden.gate.plan import Plan
from ecr_warden.observability import MetricUnit, metrics

if TYPE_CHECKING:
    from ecr_warden.gate.acting import Actor

SAVE_ATTEMPTS = 3  # two tags of one image reused at once write the same record: the loser reads it again


@dataclass(frozen=True)
class Reuse:
    """`tag`, given up by the blocked image `holder`, was pushed onto `pushed`."""

    pushed: ImageRef
    tag: str
    holder: str

    @property
    def decision_id(self) -> str:
        """The same for every delivery and retry of this reuse: consumers deduplicate on it."""
        key = f"tag_reused/{self.pushed.repository}/{self.holder}/{self.tag}/{self.pushed.digest}"
        return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


def announce_tag_reuse(actor: Actor, pushed: ImageRef, tag: str, trigger: Trigger) -> Outcome | None:
    """None when the push reuses no tag of a blocked image, is no longer where the tag points (a late or repeated
    event), or the reuse was announced already. The claim notes the reuse only once it is announced: a run that
    fails before is retried and announces, as the same decision."""
    store = actor.ports.store
    holder = store.tag_reuse_news(pushed.repository, tag, pushed.digest)  # one read; None for most pushes
    if holder is None:
        return None
    outcome = _news(actor, Reuse(pushed, tag, holder), trigger)
    store.confirm_tag_reuse(pushed.repository, tag, holder, pushed.digest)
    return outcome


def _news(actor: Actor, reuse: Reuse, trigger: Trigger) -> Outcome | None:
    pushed, tag, holder = reuse.pushed, reuse.tag, reuse.holder
    now_on = actor.ports.registry.digest_of(pushed.repository, tag)
    if now_on == pushed.digest or (now_on is None and _taken_by_its_own_block(actor, pushed, tag)):
        return _announce(actor, reuse, trigger, f"tag {tag} of a quarantined image now points at {pushed.digest}")
    if now_on == holder:
        return _announce_taken_back(actor, reuse, trigger)
    return None  # the tag moved on since this push: the push that moved it is the news


def _taken_by_its_own_block(actor: Actor, pushed: ImageRef, tag: str) -> bool:
    """The pushed image was blocked too (its scan handled before its push event) and its quarantine took the tag:
    the reuse still happened."""
    record = actor.ports.store.get(pushed.repository, pushed.digest)
    return record is not None and record.status in BLOCKED and tag in record.original_tags


def _announce_taken_back(actor: Actor, reuse: Reuse, trigger: Trigger) -> Outcome | None:
    """ECR has no conditional PutImage: a release that checked the tag was free, then put it back, moved it off an
    image pushed in between. The release can't see that; the push's own event can."""
    tag, holder, pushed = reuse.tag, reuse.holder, reuse.pushed.digest
    reason = (
        f"the release of {holder} moved tag {tag} back from {pushed}, pushed while the release ran: "
        f"tag {tag} now points at {holder}, {pushed} lost it"
    )
    return _announce(actor, reuse, trigger, reason, released=True)


def _announce(actor: Actor, reuse: Reuse, trigger: Trigger, reason: str, released: bool = False) -> Outcome | None:
    """Remember it in the holder's record and announce it. None when the holder is not blocked (released since it
    gave the tag up: nothing to warn about), or, for a tag a release took back, not released."""
    store, repository = actor.ports.store, reuse.pushed.repository
    statuses = (ImageStatus.RELEASED,) if released else BLOCKED
    for _ in range(SAVE_ATTEMPTS):
        record = store.get(repository, reuse.holder)
        if record is None or record.status not in statuses:
            return None
        plan = _plan(actor, record, reuse, reason, trigger, now_on=reuse.holder if released else reuse.pushed.digest)
        decision = transitions.decision_of(actor.ctx, plan.record)
        if _noted(record, reason):  # an earlier run saved it, then stopped: announce again, as the same decision
            detail = actor.executor.announce(replace(plan, record=record), decision, trigger)
            return Outcome(repository, reuse.holder, Action.TAG_REUSED, reason, record.status, detail)
        try:
            outcome = actor.executor.run(plan, decision, trigger)
        except ConcurrentUpdateError:
            continue
        metrics.add_metric(name="QuarantinedTagsReused", unit=MetricUnit.Count, value=1)
        return outcome
    raise ConcurrentUpdateError(f"{repository}@{reuse.holder}: could not record the reuse of {reuse.tag}")


def _noted(record: ImageRecord, reason: str) -> bool:
    """In the record already, and not left owed by a failed announcement (that one is retried in full)."""
    pending = record.pending_announcement
    owed = pending is not None and pending.action == Action.TAG_REUSED.value and pending.reason == reason
    return not owed and _in_history(record, reason)


def _in_history(record: ImageRecord, reason: str) -> bool:
    return any(e.action == Action.TAG_REUSED.value and e.reason == reason for e in record.history)


def _plan(actor: Actor, record: ImageRecord, reuse: Reuse, reason: str, trigger: Trigger, now_on: str) -> Plan:
    pending = record.pending_announcement
    if pending is not None and pending.decision_id == reuse.decision_id:
        pending = None  # this very announcement, left owed by a run that failed: paid by this one
    updated = record.model_copy(update={"updated_at": actor.ctx.now(), "pending_announcement": pending})
    if not _in_history(record, reason):
        updated.remember(actor.ctx.entry(Action.TAG_REUSED, record.status, reason, trigger))
    return Plan(
        record=updated,
        expected_version=record.version,
        action=Action.TAG_REUSED,
        previous=record.status,
        reason=reason,
        tags=(reuse.tag,),
        tag_now_on=now_on,
        decision_id=reuse.decision_id,
    )
