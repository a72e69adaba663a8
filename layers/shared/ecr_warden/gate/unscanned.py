"""An image that never gets a scan result. A push schedules a check for the policy's window later (default 30
minutes; no Lambda sleeps meanwhile). If the image still has no scan result then, the gate asks why (Inspector
coverage, ECR's scan status) and announces `unscanned` with the reason; `unscanned: block` quarantines it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ecr_warden.contracts.checks import UnscannedCheck
from ecr_warden.contracts.decision import Action
from ecr_warden.domain.images import ImageInfo, ImageRef
from ecr_warden.domain.records import ImageStatus, merge_tags
from ecr_warden.gate import transitions
from ecr_warden.gate.context import Case, GateContext, Outcome, Trigger
from ecr_warden.gate.evaluate import Decision, Verdict
from ecr_warden.gate.plan import Plan
from ecr_warden.observability import MetricUnit, metrics

if TYPE_CHECKING:
    from ecr_warden.gate.acting import Actor


def expect_scan(actor: Actor, image: ImageRef, tags: list[str], pushed_at: datetime, trigger: Trigger) -> None:
    """After a push: look again when the window closes (one queued message; a duplicate check is harmless)."""
    if actor.ports.checks is None:
        return
    ctx = actor.ctx
    actor.ports.checks.schedule(
        UnscannedCheck(
            account=ctx.account,
            region=ctx.region,
            repository=image.repository,
            digest=image.digest,
            tags=tags,
            not_before=pushed_at + timedelta(seconds=ctx.policy.unscanned_after_seconds),
            trigger_event_id=trigger.event_id,
            pushed_at=pushed_at,
        )
    )


def runnable(actor: Actor, image: ImageRef) -> bool:
    """Whether an image that declares itself a signature, attestation or SBOM has filesystem layers anyway: the
    pusher chooses the declared type, so only the layers decide that nothing runnable goes unscanned."""
    manifest = actor.ports.registry.manifest(image.repository, image.digest)
    return manifest is not None and manifest.has_filesystem_layers()


def on_check(actor: Actor, check: UnscannedCheck) -> Outcome:
    store, ctx = actor.ports.store, actor.ctx
    image = ImageRef(check.repository, check.digest)
    record = store.get(image.repository, image.digest)
    if record is not None and (record.status is not ImageStatus.PENDING or record.awaiting_findings):
        return Outcome.noop(image, f"scan result in: {record.status}", record.status)
    info = actor.ports.registry.describe(image.repository, image.digest)
    if info is None or info.is_index or (info.is_artifact and not runnable(actor, image)):
        return Outcome.noop(image, "image gone, or not an image that gets scanned")
    trigger = Trigger("unscanned check", check.trigger_event_id)
    reason = why(ctx, image, info, actor.ports.enhanced.coverage(image.repository, image.digest, _arn(ctx, image)))
    decision = _decision(ctx, image, reason)
    metrics.add_metric(name="ImagesUnscanned", unit=MetricUnit.Count, value=1)
    case = Case(image, merge_tags(check.tags, info.tags), decision, record, trigger)
    if decision.verdict is Verdict.BLOCK:
        return actor.apply(case)
    base = transitions.fresh(image, record, ctx.now())
    base.original_tags = merge_tags(base.original_tags, case.tags)
    updated = transitions.decided(ctx, base, case, ImageStatus.UNSCANNED, Action.UNSCANNED)
    plan = Plan(updated, case.version, Action.UNSCANNED, case.previous, reason, tags=tuple(case.tags))
    return actor.executor.run(plan, decision, trigger)


def _arn(ctx: GateContext, image: ImageRef) -> str:
    return f"arn:aws:ecr:{ctx.region}:{ctx.account}:repository/{image.repository}"


def why(
    ctx: GateContext, image: ImageRef, info: ImageInfo, coverage: tuple[str, str | None] | None
) -> str:  # fmt: skip
    """What ECR and Inspector say about the missing scan, in one line."""
    minutes = ctx.policy.unscanned_after_seconds // 60
    parts = []
    if coverage is not None:
        code, reason = coverage
        parts.append(f"Inspector: {code}" + (f" ({reason})" if reason else ""))
    if info.scan_status:
        description = f": {info.scan_status_description}" if info.scan_status_description else ""
        parts.append(f"ECR scan status {info.scan_status}{description}")
    if not parts:
        parts.append("neither Inspector nor ECR reports a scan of it (is scanning enabled for this repository?)")
    return f"no scan result {minutes} min after the push; " + "; ".join(parts)


def _decision(ctx: GateContext, image: ImageRef, reason: str) -> Decision:
    rule = ctx.policy.rule_for(image.repository)
    block = ctx.policy.unscanned == "block" and rule is not None
    return Decision(
        verdict=Verdict.BLOCK if block else Verdict.PASS,
        rule=rule.name if rule else None,
        block_method=rule.block_method if rule else "quarantine",
        audit=ctx.audit_mode or bool(rule and rule.audit),
        reasons=[reason],
        severity_counts={},
        counted=[],
        exempted=[],
        findings_total=0,
        note="unscanned",
    )
