"""An image that never gets a scan result. A push schedules a check for the policy's window later (default 30
minutes; no Lambda sleeps meanwhile). If the image still has no scan result then, the gate asks why (Inspector
coverage, ECR's scan status): a scan that completed (its event late or lost) is decided by its findings, one still
pending is looked at again a window later (up to PENDING_WINDOWS windows after the push), anything else is announced
`unscanned` with the reason; `unscanned: block` quarantines it."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from ecr_warden.contracts.checks import UnscannedCheck
from ecr_warden.contracts.decision import Action
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.images import ImageInfo, ImageRef
from ecr_warden.domain.records import ImageRecord, ImageStatus, merge_tags
from ecr_warden.gate import outbox, transitions
from ecr_warden.gate.context import Case, GateContext, Outcome, Trigger
from ecr_warden.gate.evaluate import Decision, Verdict, evaluate
from ecr_warden.gate.plan import Plan
from ecr_warden.observability import MetricUnit, metrics

if TYPE_CHECKING:
    from ecr_warden.gate.acting import Actor

Coverage = tuple[str, str | None]  # Inspector ListCoverage scanStatus: (statusCode, reason)

# How many policy windows after the push a scan that is still pending is waited for before it is announced.
PENDING_WINDOWS = 4
# History entries that only a scan result writes (the findings-lag wait and its end): the scan came.
SCAN_RESULT_ACTIONS = frozenset({Action.FINDINGS_LAGGING.value, Action.FINDINGS_MISSING.value})
# Inspector ScanStatus reasons (inspector2 ScanStatusReason) of a scan still to come.
INSPECTOR_PENDING = frozenset({"PENDING_INITIAL_SCAN", "SCAN_IN_PROGRESS", "PENDING_REVIVAL_SCAN"})
# ECR imageScanStatus.status values (DescribeImages) of a scan with a result, and of one still to come.
ECR_SCANNED = frozenset({"COMPLETE", "ACTIVE"})
ECR_PENDING = frozenset({"IN_PROGRESS", "PENDING"})


class Evidence(StrEnum):
    """What Inspector and ECR say about an image's scan."""

    ENHANCED_RESULT = "enhanced_result"  # Inspector scanned it: its findings are in ListFindings
    BASIC_RESULT = "basic_result"  # ECR basic scanning scanned it: DescribeImageScanFindings
    PENDING = "pending"  # a scan is queued or running
    NONE = "none"  # no scan, and none coming: announce


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
    image = ImageRef(check.repository, check.digest)
    trigger = Trigger("unscanned check", check.trigger_event_id)
    record = actor.ports.store.get(image.repository, image.digest)
    settled = _settle_owed(actor, check, record, trigger)
    if settled is not None:
        return settled
    if record is not None and scan_result_seen(record):
        return Outcome.noop(image, f"scan result in: {record.status}", record.status)
    info = actor.ports.registry.describe(image.repository, image.digest)
    if info is None or info.is_index or (info.is_artifact and not runnable(actor, image)):
        return Outcome.noop(image, "image gone, or not an image that gets scanned")
    return _by_evidence(actor, check, info, record, trigger)


def _by_evidence(
    actor: Actor, check: UnscannedCheck, info: ImageInfo, record: ImageRecord | None, trigger: Trigger
) -> Outcome:
    """Decide by the findings of a scan that completed, wait for one that is pending, else announce why not."""
    ctx, image, tags = actor.ctx, ImageRef(check.repository, check.digest), merge_tags(check.tags, info.tags)
    coverage = actor.ports.enhanced.coverage(image.repository, image.digest, repository_arn(ctx, image.repository))
    evidence = scan_evidence(info, coverage)
    if evidence in (Evidence.ENHANCED_RESULT, Evidence.BASIC_RESULT):
        findings = _listed(actor, image, basic=evidence is Evidence.BASIC_RESULT)
        if findings is None:
            return actor.skipped(image, "scan findings are gone with the image", trigger, record)
        known = merge_tags(record.original_tags if record else [], tags)
        return actor.apply(Case(image, tags, _evaluate(actor, image, known, findings), record, trigger))
    if evidence is Evidence.PENDING and _wait(actor, check):
        return Outcome.noop(image, "scan pending: " + describe(info, coverage), record.status if record else None)
    decision = _decision(ctx, image, why(ctx, check, info, coverage))
    return _announce(actor, Case(image, tags, decision, record, trigger))


def scan_result_seen(record: ImageRecord) -> bool:
    """The image was decided, waits for lagging findings, or a scan result arrived: `scanned_at` is set, or (records
    written before it existed) the history shows the findings-lag wait, which only a scan result starts."""
    if record.status is not ImageStatus.PENDING or record.awaiting_findings or record.scanned_at is not None:
        return True
    return any(entry.action in SCAN_RESULT_ACTIONS for entry in record.history)


def scan_evidence(info: ImageInfo, coverage: Coverage | None) -> Evidence:
    """Inspector's word first (it runs enhanced scanning); ECR's scan status covers basic scanning too."""
    code, reason = coverage if coverage is not None else (None, None)
    if code == "ACTIVE" and reason == "SUCCESSFUL":
        return Evidence.ENHANCED_RESULT
    if reason in INSPECTOR_PENDING:
        return Evidence.PENDING
    if info.scan_status in ECR_SCANNED:
        basic = coverage is None and info.scan_status == "COMPLETE"
        return Evidence.BASIC_RESULT if basic else Evidence.ENHANCED_RESULT
    if info.scan_status in ECR_PENDING:
        return Evidence.PENDING
    return Evidence.NONE


def repository_arn(ctx: GateContext, repository: str) -> str:
    return f"arn:{partition(ctx.region)}:ecr:{ctx.region}:{ctx.account}:repository/{repository}"


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


def describe(info: ImageInfo, coverage: Coverage | None) -> str:
    """What ECR and Inspector say about the image's scan, in one line."""
    parts = []
    if coverage is not None:
        code, reason = coverage
        parts.append(f"Inspector: {code}" + (f" ({reason})" if reason else ""))
    if info.scan_status:
        description = f": {info.scan_status_description}" if info.scan_status_description else ""
        parts.append(f"ECR scan status {info.scan_status}{description}")
    if not parts:
        parts.append("neither Inspector nor ECR reports a scan of it (is scanning enabled for this repository?)")
    return "; ".join(parts)


def why(ctx: GateContext, check: UnscannedCheck, info: ImageInfo, coverage: Coverage | None) -> str:
    """The unscanned announcement's reason: how long since the push, and what ECR and Inspector say."""
    minutes = int((check.not_before - check.pushed_at).total_seconds() // 60)  # it is at least that late now
    pending = "scan still pending; " if scan_evidence(info, coverage) is Evidence.PENDING else ""
    return f"no scan result {minutes} min after the push; {pending}{describe(info, coverage)}"


def _wait(actor: Actor, check: UnscannedCheck) -> bool:
    """Look again a window later, until PENDING_WINDOWS windows after the push; False once that bound is reached
    (or nothing can wait)."""
    ctx, checks = actor.ctx, actor.ports.checks
    window = timedelta(seconds=ctx.policy.unscanned_after_seconds)
    bound = check.pushed_at + window * PENDING_WINDOWS
    if checks is None or ctx.now() >= bound:
        return False
    checks.schedule(check.model_copy(update={"not_before": min(ctx.now() + window, bound)}))
    metrics.add_metric(name="ScansPending", unit=MetricUnit.Count, value=1)
    return True


def _listed(actor: Actor, image: ImageRef, basic: bool) -> list[Finding] | None:
    """The findings of a scan that completed (its result event late or lost); None: gone with the image."""
    if basic:
        return actor.ports.registry.basic_findings(image.repository, image.digest)
    return actor.ports.enhanced.active_findings(image.repository, image.digest)


def _evaluate(actor: Actor, image: ImageRef, tags: list[str], findings: list[Finding]) -> Decision:
    """As the gate's own path does: the stored exemptions are read only when they could change the verdict."""
    ctx, exemptions = actor.ctx, actor.ports.exemptions
    decision = evaluate(ctx.policy, image, tags, findings, ctx.now(), ctx.audit_mode)
    if decision.verdict is Verdict.PASS or exemptions is None:
        return decision
    stored = exemptions.active(image.repository, ctx.now())
    return evaluate(ctx.policy, image, tags, findings, ctx.now(), ctx.audit_mode, stored) if stored else decision


def _announce(actor: Actor, case: Case) -> Outcome:
    metrics.add_metric(name="ImagesUnscanned", unit=MetricUnit.Count, value=1)
    if case.decision.verdict is Verdict.BLOCK:
        return actor.apply(case)
    ctx, reason = actor.ctx, case.decision.reasons[0]
    base = transitions.fresh(case.image, case.record, ctx.now())
    base.original_tags = merge_tags(base.original_tags, case.tags)
    updated = transitions.decided(ctx, base, case, ImageStatus.UNSCANNED, Action.UNSCANNED)
    plan = Plan(updated, case.version, Action.UNSCANNED, case.previous, reason, tags=tuple(case.tags))
    return actor.executor.run(plan, case.decision, case.trigger)


def _settle_owed(actor: Actor, check: UnscannedCheck, record: ImageRecord | None, trigger: Trigger) -> Outcome | None:
    """A retry of an unscanned decision whose announcement did not go out: send it (once) and finish the block.
    The decision's fingerprint does not depend on its reason, so the one owed is recognised by rebuilding it."""
    pending = record.pending_announcement if record is not None else None
    if pending is None:
        return None
    image = ImageRef(check.repository, check.digest)
    case = Case(image, check.tags, _decision(actor.ctx, image, pending.reason), record, trigger)
    return outbox.settle_if_owed(actor, case)


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
