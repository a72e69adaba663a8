"""The decision event: what the gate tells the bus (and through it Slack, SNS and any consumer) after acting."""

from __future__ import annotations

import uuid

from ecr_warden.contracts.decision import SCHEMA_VERSION, Action, DecisionDetail
from ecr_warden.domain.findings import top
from ecr_warden.domain.records import ImageRecord
from ecr_warden.gate.context import GateContext, Trigger
from ecr_warden.gate.evaluate import Decision


def decision_detail(
    ctx: GateContext, record: ImageRecord, decision: Decision, action: Action, previous: str | None,
    trigger: Trigger, tags: list[str] | None = None,
) -> DecisionDetail:  # fmt: skip
    return DecisionDetail(
        schema_version=SCHEMA_VERSION,
        decision_id=str(uuid.uuid4()),
        time=ctx.now(),
        account=ctx.account,
        region=ctx.region,
        environment=ctx.environment,
        mode=ctx.mode,
        repository=record.repository,
        digest=record.digest,
        tags=tags if tags is not None else record.original_tags,
        verdict=decision.verdict.value,
        action=action,
        status=record.status.value,
        previous_status=previous,
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
    )
