"""A decision and its announcement happen exactly once each. The executor writes the announcement a decision that
changes ECR owes (`pending_announcement`, with the decision's fingerprint and decision_id) ahead with the decision
and clears it once sent; a retry of the same decision finds it when the run stopped in between, completes what is
missing in ECR without announcing that step, announces the original action under its decision_id, then clears the
debt."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ecr_warden.contracts.decision import Action
from ecr_warden.domain.records import ImageStatus, PendingAnnouncement
from ecr_warden.gate import restore
from ecr_warden.gate.context import Case, Outcome
from ecr_warden.gate.plan import Plan

if TYPE_CHECKING:
    from ecr_warden.gate.acting import Actor


# How long a run that wrote a decision ahead may still be carrying it out (the functions' Timeout): a duplicate
# delivery meanwhile leaves the announcement to it. Lambda retries a failed run a minute or more after it ended.
IN_FLIGHT = timedelta(seconds=60)


def owed(case: Case, now: datetime) -> PendingAnnouncement | None:
    """The announcement the stored record still owes for exactly this decision, if no run is still paying it: one
    that failed said so (`incomplete`); one that crashed or timed out has been gone for IN_FLIGHT."""
    record = case.record
    if record is None or record.pending_announcement is None:
        return None
    pending = record.pending_announcement
    if pending.fingerprint is None or pending.fingerprint != record.fingerprint:
        return None
    if pending.fingerprint != case.decision.fingerprint:
        return None
    if record.incomplete is None and now - record.updated_at < IN_FLIGHT:
        return None  # the run that decided is (or may be) still at it: finish quietly, it announces
    return pending


def settle_if_owed(actor: Actor, case: Case) -> Outcome | None:
    """A retry of a decision whose run failed: finish it and announce it as itself; None when nothing is owed."""
    pending = owed(case, actor.ctx.now())
    return settle(actor, case, pending) if pending is not None else None


def settle(actor: Actor, case: Case, pending: PendingAnnouncement) -> Outcome:
    """Finish the decision in ECR (silently), announce it as itself, then clear the debt."""
    record, store = case.record, actor.ports.store
    assert record is not None  # owed() found the debt on it
    if record.status is ImageStatus.RELEASED:  # an interrupted (auto-)release
        return restore.finish(actor, record, case.decision, case.trigger)
    if record.status is ImageStatus.QUARANTINED:
        actor.enforce_quarantine(record, None, case.trigger, announce=False)
    elif record.status in (ImageStatus.ARCHIVED, ImageStatus.TAGGED):
        actor.complete(record)
    current = store.get(record.repository, record.digest) or record
    tags = tuple(pending.tags) if pending.tags is not None else None
    plan = Plan(
        current, current.version, Action(pending.action), pending.previous, pending.reason, tags=tags,
        tag_now_on=pending.tag_now_on, decision_id=pending.decision_id,
    )  # fmt: skip
    detail = actor.executor.announce(plan, case.decision, case.trigger)
    store.save(current.model_copy(update={"pending_announcement": None, "incomplete": None}), current.version)
    return Outcome(record.repository, record.digest, plan.action, pending.reason, current.status, detail)
