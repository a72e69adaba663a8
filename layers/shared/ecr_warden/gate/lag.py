"""Findings that lag their scan. AWS documents that a scan-complete event can arrive before its findings are
listed; an image whose scanner counted CRITICAL findings must never pass because ListFindings is still empty.

The gate records the wait (status PENDING unless the image is already handled), checks again through its
delayed-check queue (no sleeping inside Lambda) with a doubling delay until the policy's window closes, and
then lets the counts decide: `block` (fail closed) or `alert` (announce `findings_missing`).

Missing is not zero: an Inspector event that leaves a severity at a threshold uncounted waits too, on its TOTAL when
it sent one (more findings in all than listed), else until something is listed or the window closes. Events arrive
late, twice and out of order: the record keeps the scan time it waits on (`scanned_at`), so a result or a re-check
of an older scan never ends the wait for a newer one, and a scan whose wait ended is not waited on again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ecr_warden.contracts.checks import FindingsCheck
from ecr_warden.contracts.common import SeverityCounts
from ecr_warden.contracts.decision import Action
from ecr_warden.domain.findings import Finding, count_by_severity
from ecr_warden.domain.images import ImageRef
from ecr_warden.domain.records import ImageRecord, ImageStatus, merge_tags
from ecr_warden.domain.severity import SEVERITIES, SEVERITY_RANK, severity_rank
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
TOTAL = "TOTAL"  # in counts: the event's total, kept only when a severity at a threshold went uncounted
UNCOUNTED = "UNCOUNTED"  # in a lag: a severity at a threshold went uncounted, and no total says how many


def _thresholds(rule: Rule) -> list[tuple[Verdict, int]]:
    pairs = [(Verdict.BLOCK, rule.block_at), (Verdict.TAG, rule.tag_at)]
    return [(verdict, severity_rank(level)) for verdict, level in pairs if level is not None]


def _lowest(policy: Policy, repository: str) -> int | None:
    rule = policy.rule_for(repository)
    ranks = [rank for _verdict, rank in _thresholds(rule)] if rule else []
    return min(ranks) if ranks else None


def _uncounted(counts: dict[str, int], lowest: int) -> bool:
    return any(rank >= lowest and severity not in counts for severity, rank in SEVERITY_RANK.items())


def scan_time(moment: datetime) -> datetime:
    """A scan event's time as the record keeps it: UTC, whole seconds (stored text then sorts as time does)."""
    return moment.astimezone(UTC).replace(microsecond=0)


def reported_counts(policy: Policy, repository: str, counts: SeverityCounts | None, basic: bool) -> dict[str, int]:
    """The counts to hold the findings to: the severities the event reported, with its TOTAL when Inspector left a
    severity at a threshold uncounted (ECR basic scanning omits zeros by design)."""
    reported = counts.as_dict() if counts else {}
    lowest = _lowest(policy, repository)
    if not basic and counts is not None and counts.total is not None and lowest is not None:
        reported.update({TOTAL: counts.total} if _uncounted(reported, lowest) else {})
    return reported


def missing(
    policy: Policy, repository: str, counts: dict[str, int], findings: list[Finding], basic: bool = False
) -> dict[str, int]:
    """Severities at or above the repository's lowest threshold that the scanner counted more often than the
    findings list holds, with the count it reported; else, for Inspector, what an uncounted severity leaves open:
    TOTAL (more findings in all than listed) or UNCOUNTED (no total, and nothing listed yet)."""
    lowest = _lowest(policy, repository)
    if lowest is None:
        return {}
    listed = count_by_severity(findings)
    lagging = {
        severity: reported
        for severity, reported in counts.items()
        if severity in SEVERITIES and severity_rank(severity) >= lowest and reported > listed.get(severity, 0)
    }
    if lagging or basic or not _uncounted(counts, lowest):
        return lagging
    total = counts.get(TOTAL)
    if total is None:
        return {} if findings else {UNCOUNTED: 0}
    return {TOTAL: total} if total > len(findings) else {}


def uncounted_only(lagging: dict[str, int]) -> bool:
    """Nothing the scanner counted is missing, it only left severities uncounted: the listed findings decide."""
    return set(lagging) == {UNCOUNTED}


def outdated(record: ImageRecord | None, scanned_at: datetime | None) -> str | None:
    """Why a scan's counts are not to be waited on: the record holds a newer scan, or this scan's wait ended."""
    if record is None or record.scanned_at is None or scanned_at is None:
        return None
    if scanned_at < record.scanned_at:
        return "an older scan than the one recorded: its counts are out of date"
    if scanned_at == record.scanned_at and record.awaiting_findings is None:
        return "this scan's result was handled already"
    return None


def older_than_awaited(record: ImageRecord | None, scanned_at: datetime) -> bool:
    """A result of an older scan than the one whose findings the record waits for."""
    if record is None or record.awaiting_findings is None or record.scanned_at is None:
        return False
    return scanned_at < record.scanned_at


def waits_for_newer(record: ImageRecord | None, scanned_at: datetime | None) -> bool:
    """A clean result that must not end this record's wait: not known to be newer than the scan waited on."""
    if record is None or record.awaiting_findings is None:
        return False
    return record.scanned_at is None or scanned_at is None or scanned_at <= record.scanned_at


def awaits(record: ImageRecord, check: FindingsCheck) -> bool:
    """Whether the record still waits on the scan this check was queued for (else a newer scan replaced it)."""
    if record.awaiting_findings != _awaited(check):
        return False
    return check.scanned_at is None or record.scanned_at is None or check.scanned_at == record.scanned_at


def _awaited(check: FindingsCheck) -> dict[str, int]:
    # never empty: an empty dict would read as "not waiting" (an event without any count waits too)
    return dict(check.counts) or {UNCOUNTED: 0}


def describe(lagging: dict[str, int]) -> str:
    def part(key: str, count: int) -> str:
        if key == TOTAL:
            return f"{count} findings in all, some of a threshold severity uncounted"
        return "no count of a threshold severity" if key == UNCOUNTED else f"{count} {key}"

    return "scanner reported " + ", ".join(part(key, count) for key, count in lagging.items())


def wait(
    actor: Actor, check: FindingsCheck, lagging: dict[str, int], record: ImageRecord | None, trigger: Trigger
) -> Outcome:
    """Record that this image waits for its findings and schedule the first re-check."""
    store, ctx, checks = actor.ports.store, actor.ctx, actor.ports.checks
    assert checks is not None  # without a queue nothing can wait: the caller decides at once
    image, tags = ImageRef(check.repository, check.digest), check.tags
    awaited = _awaited(check)
    if record is not None and record.awaiting_findings == awaited and awaits(record, check):
        return Outcome.noop(image, "already waiting for the findings of this scan", record.status)
    status = ImageStatus.PENDING if record is None or record.status in _REPLACEABLE else record.status
    base = transitions.fresh(image, record, ctx.now())
    base.status, base.updated_at, base.awaiting_findings = status, ctx.now(), awaited
    base.scanned_at = check.scanned_at or base.scanned_at
    base.original_tags = merge_tags(base.original_tags, tags)
    delay = ctx.policy.findings_lag.first_recheck_seconds
    reason = f"{describe(lagging)}; findings not listed yet: re-check in {delay} s"
    base.remember(ctx.entry(Action.FINDINGS_LAGGING, status, reason, trigger))
    # queued before the wait is recorded: when queueing fails, the event's retry finds no wait and starts over
    checks.schedule(check)
    store.save(base, record.version if record else 0)
    metrics.add_metric(name="FindingsLagging", unit=MetricUnit.Count, value=1)
    return Outcome(image.repository, image.digest, Action.FINDINGS_LAGGING, reason, status)


def first_check(  # noqa: PLR0913 - a check carries what its scan event said
    ctx: GateContext, image: ImageRef, tags: list[str], counts: dict[str, int], basic: bool, trigger: Trigger,
    scanned_at: datetime | None = None,
) -> FindingsCheck:  # fmt: skip
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
        scanned_at=scanned_at,
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
    total = counts.get(TOTAL, 0)
    if verdict is Verdict.PASS and total > len(findings):  # uncounted severities: fail closed on the total
        (verdict, floor), reported = _thresholds(rule)[0], {TOTAL: total}
    return Decision(
        verdict=verdict,
        rule=rule.name,
        block_method=rule.block_method,
        audit=ctx.audit_mode or rule.audit,
        reasons=[f"{describe(reported)}; findings not yet listed"],
        severity_counts={s: c for s, c in counts.items() if s in SEVERITIES},
        counted=[f for f in findings if f.rank >= floor] if floor else [],
        exempted=[],
        findings_total=max(total, sum(c for s, c in counts.items() if s in SEVERITIES)),
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
    if actor.ports.registry.describe(image.repository, image.digest) is None:  # ListFindings is [] for it too
        return actor.skipped(image, "image no longer exists", trigger, record)
    status = record.status if record else ImageStatus.PENDING
    base = transitions.fresh(image, record, ctx.now())
    base.scanned_at = base.scanned_at or check.scanned_at
    updated = transitions.decided(ctx, base, case, status, Action.FINDINGS_MISSING)
    plan = Plan(updated, case.version, Action.FINDINGS_MISSING, case.previous, decision.reasons[0])
    return actor.executor.run(plan, decision, trigger)
