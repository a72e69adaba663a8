"""A settings run's record and announcement: the changes of a trigger across attempts, the action they add up
to, the decision event, and the fingerprint of gaps already announced. Pure."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from ecr_warden.contracts.decision import SCHEMA_VERSION, Action, DecisionDetail, SettingChange
from ecr_warden.repository_settings.context import SettingsContext, Trigger
from ecr_warden.repository_settings.state import Change, Plan


def decision_detail(
    ctx: SettingsContext, repository: str, plan: Plan, trigger: Trigger, done: list[dict[str, Any]], action: Action
) -> DecisionDetail:
    return DecisionDetail(
        schema_version=SCHEMA_VERSION,
        decision_id=str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"ecr-warden:settings:{ctx.account}:{ctx.region}:{repository}:{trigger.id}")
        ),
        time=ctx.now(),
        account=ctx.account,
        region=ctx.region,
        environment=ctx.environment,
        mode=ctx.mode,
        repository=repository,
        subject="repository",
        verdict="NONCOMPLIANT",
        action=action,
        status=action.value.upper(),
        rule=plan.profile,
        reasons=[*plan.reports, *plan.notes],
        settings_changes=[SettingChange.model_validate(c) for c in done],
        creation_path=trigger.creation_path,
        trigger=trigger.name,
        trigger_event_id=trigger.id,
    )


def fingerprint(mode: str, plan: Plan) -> str:
    seen = json.dumps([mode, sorted((c.setting, c.after or "") for c in plan.changes), sorted(plan.reports)])
    return hashlib.sha256(seen.encode()).hexdigest()[:32]


def merge_change(done: list[dict[str, Any]], change: Change, applied: bool) -> list[dict[str, Any]]:
    """Changes of one trigger across attempts, by setting: the first `before`, the latest `after`."""
    earlier = next((c for c in done if c["setting"] == change.setting), None)
    before = earlier["before"] if earlier else change.before
    kept = [c for c in done if c["setting"] != change.setting]
    return [*kept, {"setting": change.setting, "before": before, "after": change.after, "applied": applied}]


def action_of(enforce: bool, done: list[dict[str, Any]], plan: Plan) -> Action:
    if any(c["applied"] for c in done):
        return Action.SETTINGS_ENFORCED
    if not enforce and plan.changes:
        return Action.WOULD_ENFORCE_SETTINGS
    return Action.SETTINGS_REPORTED
