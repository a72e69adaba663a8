"""Multi-arch images: an index (manifest list) and its per-platform images are one deployable thing. Pulling the
index's tag pulls a platform image, so blocking a platform image blocks every index that lists it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecr_warden.contracts.decision import Action
from ecr_warden.domain.images import ImageInfo, ImageRef, Observed
from ecr_warden.domain.records import BLOCKED, ImageStatus, merge_tags
from ecr_warden.gate import transitions
from ecr_warden.gate.context import Case, Outcome, Trigger
from ecr_warden.gate.evaluate import Verdict

if TYPE_CHECKING:
    from ecr_warden.gate.acting import Actor


def block_through_indexes(actor: Actor, case: Case, info: ImageInfo, deployable: list[str]) -> Outcome | None:
    """Block the indexes a platform image belongs to that deploy something; None when none does (block the image
    itself)."""
    image, record, store = case.image, case.record, actor.ports.store
    recorded = record.index_digests if record else []
    observed: dict[str, Observed | None] = dict.fromkeys(_deploying(actor, image.repository, recorded))
    if not observed and not deployable:  # not mapped yet: look where its index can be (bounded)
        found = actor.ports.registry.indexes_containing(image.repository, image.digest, info.pushed_at)
        observed = {index.info.digest: index for index in found}
    if not observed:
        return None
    indexes = list(observed)
    outcomes = [
        actor.apply(Case(ImageRef(image.repository, index), [], case.decision, store.get(image.repository, index),
                         case.trigger, observed[index]))
        for index in indexes
    ]  # fmt: skip
    if deployable and not case.decision.audit:  # per-platform tags of its own (v1-amd64): block those too
        return actor.quarantine(case, info, deployable)
    first = outcomes[0]
    mirrored = first.status if first.status in ImageStatus.__members__ else None
    status = ImageStatus(mirrored) if mirrored else (
        ImageStatus.AUDITED if case.decision.audit else ImageStatus.QUARANTINED
    )  # fmt: skip
    listed = ", ".join(indexes)
    base = transitions.fresh(image, record, actor.ctx.now())
    child = transitions.decided(actor.ctx, base, case, status, first.action, f"blocked through index(es) {listed}")
    child.index_digests = merge_tags(child.index_digests, indexes)
    store.save(child, case.version)
    return Outcome(image.repository, image.digest, first.action, f"blocked index(es) {listed}", child.status,
                   first.announced)  # fmt: skip


def _deploying(actor: Actor, repository: str, indexes: list[str]) -> list[str]:
    """The recorded indexes that still carry a tag of their own: one read each, instead of a whole decision each (the
    list grows with every build that made a new index over the same image). An untagged or deleted index deploys
    nothing by tag, as a quarantined one; once a tag lands on it, its push is mapped and it is blocked then."""
    policy, kept = actor.ctx.policy, []
    for index in indexes:
        info = actor.ports.registry.describe(repository, index)
        if info is not None and any(not policy.is_own_tag(tag, index) for tag in info.tags):
            kept.append(index)
    return kept


def map_index(actor: Actor, index: ImageRef, trigger: Trigger) -> Outcome:
    """An index was pushed: remember its platform images, and block it if one of them is already blocked."""
    store, ctx = actor.ports.store, actor.ctx
    manifest = actor.ports.registry.manifest(index.repository, index.digest)
    if manifest is None:
        return actor.skipped(index, "image index no longer exists", trigger)
    children = manifest.platform_children()
    for child in children:
        store.link_child(index.repository, child, index.digest, ctx.now())
    record = store.get(index.repository, index.digest)
    base = transitions.fresh(index, record, ctx.now())
    base.child_digests = merge_tags(base.child_digests, children)
    if base.child_digests != (record.child_digests if record else None):
        base.remember(ctx.entry(Action.MAPPED, base.status, f"{len(children)} platform image(s)", trigger))
        base.updated_at = ctx.now()
        base = store.save(base, record.version if record else 0)
    if base.status is ImageStatus.QUARANTINED:
        return actor.enforce_quarantine(base, None, trigger)
    for child in children:  # a child scanned before its index arrived may already be blocked
        child_record = store.get(index.repository, child)
        if (
            child_record
            and child_record.verdict == Verdict.BLOCK
            and child_record.status in (*BLOCKED, ImageStatus.AUDITED)
        ):
            # through the state machine: a released or exempt index stays as an admin left it
            decision = transitions.decision_of(ctx, child_record)
            return actor.apply(Case(index, [], decision, base, trigger))
    reason = f"index of {len(children)} platform image(s)"
    return Outcome(index.repository, index.digest, Action.MAPPED, reason, base.status)
