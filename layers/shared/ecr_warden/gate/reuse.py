"""A tag a blocked image gave up is pushed onto another image. In an IMMUTABLE repository quarantine frees the
tag, so someone can push a different image as `v1.3.0`; in a MUTABLE one CI can move `latest`. Either way people
must hear of it: the quarantined image's record says so, and an announcement names both digests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecr_warden.contracts.decision import Action
from ecr_warden.domain.images import ImageRef
from ecr_warden.domain.records import BLOCKED
from ecr_warden.gate import transitions
from ecr_warden.gate.context import Outcome, Trigger
from ecr_warden.gate.plan import Plan
from ecr_warden.observability import MetricUnit, metrics

if TYPE_CHECKING:
    from ecr_warden.gate.acting import Actor


def announce_tag_reuse(actor: Actor, pushed: ImageRef, tag: str, trigger: Trigger) -> Outcome | None:
    """None when the push reuses no tag of a blocked image (or the reuse was announced already)."""
    store = actor.ports.store
    holder = store.mark_tag_reused(pushed.repository, tag, pushed.digest)  # one write; news only once
    if holder is None:
        return None
    record = store.get(pushed.repository, holder)
    if record is None or record.status not in BLOCKED:
        return None  # released (or gone) since it gave the tag up: nothing to warn about
    reason = f"tag {tag} of a quarantined image now points at {pushed.digest}"
    updated = record.model_copy(update={"updated_at": actor.ctx.now()})
    updated.remember(actor.ctx.entry(Action.TAG_REUSED, record.status, reason, trigger))
    plan = Plan(
        record=updated,
        expected_version=record.version,
        action=Action.TAG_REUSED,
        previous=record.status,
        reason=reason,
        tags=(tag,),
        tag_now_on=pushed.digest,
    )
    metrics.add_metric(name="QuarantinedTagsReused", unit=MetricUnit.Count, value=1)
    return actor.executor.run(plan, transitions.decision_of(actor.ctx, updated), trigger)
