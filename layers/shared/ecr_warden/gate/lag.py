"""Findings that lag their scan. AWS documents that a scan-complete event can arrive before its findings are
listed; an image whose scanner counted CRITICAL findings must never pass because ListFindings is still empty.

The gate records the wait (status PENDING unless the image is already handled), checks again through its
delayed-check queue (no sleeping inside Lambda) with a doubling delay until the policy's window closes, and
then lets the counts decide: `block` (fail closed) or `alert` (announce `findings_missing`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ecr_warden.contracts.checks import FindingsCheck
from ecr_warden.contracts.decision import Action
from ecr_warden.domain.findings import Finding, count_by_severity
from ecr_warden.domain.images import ImageRef
from ecr_warden.domain.records import ImageRecord, ImageStatus, merge_tags
from ecr_warden.domain.severity import SEVERITIES, severity_rank
from ecr_warden.gate import transitions
from ecr_warden.gate.context import Case, GateContext, Outcome, Trigger
from ecr_warden.gate.evaluate import Decision, Verdict
from ecr_warden.gate.plan import Plan
from ecr_warden.observability import MetricUnit, metrics
from ecr_warden.policy.model import Policy, Rule

if TYPE_CHECKING:
    from ecr_warden.gate.acting import Actor

# Statuses a wait may replace: nothing was done to the image in ECR, and a PASSED must not stand meanwhile.
_REPLACEABLE = frozenset(
    {ImageStatus.PENDING, ImageStatus.PASSED, ImageStatus.SCAN_FAILED, ImageStatus.SKIPPED, ImageStatus.UNSCANNED}
)


def _thresholds(rule: Rule) -> list[tuple[Verdict, int]]:
    pairs = [(Verdict.BLOCK, rule.block_at), (Verdict.TAG, rule.tag_at)]
    return [(verdict, severity_rank(level)) for verdict, level in pairs if level is not None]


def missing(policy: Policy, repository: str, counts: dict[str, int], findings: list[Finding]) -> dict[str, int]:
    """Severities at or above the repository's lowest threshold that the scanner counted more often than the
    findings list holds, with the count it reported."""
    rule = policy.rule_for(repository)
    ranks = [rank for _verdict, rank in _thresholds(rule)] if rule else []
    if not ranks:
        return {}
    listed = count_by_severity(findings)
    return {
        severity: reported
        for severity, reported in counts.items()
        if severity in SEVERITIES and severity_rank(severity) >= min(ranks) and reported > listed.get(severity, 0)
    }


def describe(lagging: dict[str, int]) -> str:
    return "scanner reported " + ", ".join(f"{count} {severity}" for severity, count in lagging.items())


def wait(
    actor: Actor, check: FindingsCheck, lagging: dict[str, int], findings: list[Finding], trigger: Trigger
) -> Outcome:
    """Record that this image waits for its findings and schedule the first re-check."""
    store, ctx = actor.ports.store, actor.ctx
    image, tags = ImageRef(check.repository, check.digest), check.tags
    record = store.get(image.repository, image.digest)
    if record is not None and record.awaiting_findings == check.counts:
        return Outcome.noop(image, "already waiting for the findings of this scan", record.status)
    if actor.ports.checks is None:  # nothing can wait: decide by the counts now
        return timed_out(actor, check, findings, record, trigger)
    status = ImageStatus.PENDING if record is None or record.status in _REPLACEABLE else record.status
    base = transitions.fresh(image, record, ctx.now())
    base.status, base.updated_at, base.awaiting_findings = status, ctx.now(), dict(check.counts)
    base.original_tags = merge_tags(base.original_tags, tags)
    delay = ctx.policy.findings_lag.first_recheck_seconds
    reason = f"{describe(lagging)}; findings not listed yet: re-check in {delay} s"
    base.remember(ctx.entry(Action.FINDINGS_LAGGING, status, reason, trigger))
    store.save(base, record.version if record else 0)
    actor.ports.checks.schedule(check)
    metrics.add_metric(name="FindingsLagging", unit=MetricUnit.Count, value=1)
    return Outcome(image.repository, image.digest, Action.FINDINGS_LAGGING, reason, status)


def first_check(ctx: GateContext, image: ImageRef, tags: list[str], counts: dict[str, int], basic: bool,
                trigger: Trigger) -> FindingsCheck:  # fmt: skip
    now = ctx.now()
    return FindingsCheck(
        account=ctx.account,
        region=ctx.region,
        repository=image.repository,
        digest=image.digest,
        tags=tags,
        not_before=now + timedelta(seconds=ctx.policy.findings_lag.first_recheck_seconds),
        trigger_event_id=trigger.event_id,
        counts=counts,
        basic=basic,
        first_seen=now,
    )


def next_check(policy: Policy, check: FindingsCheck, now: datetime) -> FindingsCheck | None:
    """The following re-check (the delay doubles), or None once the window has closed."""
    closes = check.first_seen + timedelta(seconds=policy.findings_lag.window_seconds)
    if now >= closes:
        return None
    delay = timedelta(seconds=policy.findings_lag.first_recheck_seconds * 2 ** (check.attempt + 1))
    return check.model_copy(update={"attempt": check.attempt + 1, "not_before": min(now + delay, closes)})


def counts_decision(ctx: GateContext, repository: str, counts: dict[str, int], findings: list[Finding]) -> Decision:
    """The decision the scanner's counts call for, when the findings behind them never got listed."""
    rule = ctx.policy.rule_for(repository)
    assert rule is not None  # only a governed repository can have lagging findings
    verdict, floor = Verdict.PASS, 0
    for candidate, rank in _thresholds(rule):
        if any(count > 0 and severity_rank(severity) >= rank for severity, count in counts.items()):
            verdict, floor = candidate, rank
            break
    reported = {s: c for s, c in counts.items() if s in SEVERITIES and c > 0 and severity_rank(s) >= floor}
    return Decision(
        verdict=verdict,
        rule=rule.name,
        block_method=rule.block_method,
        audit=ctx.audit_mode or rule.audit,
        reasons=[f"{describe(reported)}; findings not yet listed"],
        severity_counts={s: c for s, c in counts.items() if s in SEVERITIES},
        counted=[f for f in findings if f.rank >= floor] if floor else [],
        exempted=[],
        findings_total=sum(c for s, c in counts.items() if s in SEVERITIES),
        note="findings missing: " + ",".join(f"{s}={c}" for s, c in sorted(reported.items())),
    )


def timed_out(
    actor: Actor, check: FindingsCheck, findings: list[Finding], record: ImageRecord | None, trigger: Trigger
) -> Outcome:
    """The window closed with findings still missing: the counts decide (fail closed), or an alert goes out."""
    ctx = actor.ctx
    image = ImageRef(check.repository, check.digest)
    decision = counts_decision(ctx, image.repository, check.counts, findings)
    metrics.add_metric(name="FindingsMissing", unit=MetricUnit.Count, value=1)
    case = Case(image, check.tags, decision, record, trigger)
    if ctx.policy.findings_lag.on_timeout == "block":
        return actor.apply(case)
    status = record.status if record else ImageStatus.PENDING
    base = transitions.fresh(image, record, ctx.now())
    updated = transitions.decided(ctx, base, case, status, Action.FINDINGS_MISSING)
    plan = Plan(updated, case.version, Action.FINDINGS_MISSING, case.previous, decision.reasons[0])
    return actor.executor.run(plan, decision, trigger)
