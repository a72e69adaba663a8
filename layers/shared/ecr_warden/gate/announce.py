"""The decision event: what the gate tells the bus (and through it Slack, SNS and any consumer) after acting."""

from __future__ import annotations

import uuid

from ecr_warden.contracts.decision import SCHEMA_VERSION, DecisionDetail
from ecr_warden.domain.findings import top
from ecr_warden.gate.context import GateContext, Trigger
from ecr_warden.gate.evaluate import Decision
from ecr_warden.gate.plan import Plan


def decision_detail(ctx: GateContext, plan: Plan, decision: Decision, trigger: Trigger) -> DecisionDetail:
    """The announcement of a carried-out plan: the record as it now stands, the action, the decision behind it."""
    record = plan.record
    return DecisionDetail(
        schema_version=SCHEMA_VERSION,
        decision_id=plan.decision_id or str(uuid.uuid4()),
        time=ctx.now(),
        account=ctx.account,
        region=ctx.region,
        environment=ctx.environment,
        mode=ctx.mode,
        repository=record.repository,
        digest=record.digest,
        tags=list(plan.tags) if plan.tags is not None else record.original_tags,
        verdict=decision.verdict.value,
        action=plan.action,
        status=record.status.value,
        previous_status=plan.previous,
        rule=decision.rule,
        reasons=decision.reasons,
        severity_counts=decision.severity_counts,
        top_findings=top(decision.counted),
        findings_total=decision.findings_total,
        exempted=decision.exempted,
        quarantine_tag=record.quarantine_tag,
        marker_tag=record.marker_tag,
        trigger=trigger.name,
        trigger_event_id=trigger.event_id,
        fingerprint=decision.fingerprint,
        not_restored=plan.not_restored or {},
        tag_now_on=plan.tag_now_on,
    )
