"""`enforce`: apply the policy's repository settings to one repository, or to every managed one, now, through the
settings guard's own service (the same decisions, records and announcements as its CloudTrail and daily runs).
`dry_run` only reads: it says what would change and writes nothing."""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ecr_warden.actions.registry import AdminAction, RequestRejected, Who, Why, register_admin
from ecr_warden.contracts.common import RepositoryName
from ecr_warden.repository_settings.context import Trigger
from ecr_warden.repository_settings.evaluate import evaluate

if TYPE_CHECKING:
    from ecr_warden.admin.ports import AdminTools
    from ecr_warden.repository_settings.service import SettingsGuard

DRY_RUN_LIMIT = 100  # repositories a dry run over every managed one reads within one invocation


class EnforceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: RepositoryName | None = None  # none: every repository a repository_settings profile matches
    dry_run: bool = Field(True, strict=True)
    reason: Why
    by: Who


class AdminEnforce(EnforceRequest):
    """The admin function's `enforce` payload (admin/requests.py)."""

    action: Literal["enforce"]


@register_admin
class Enforce(AdminAction[EnforceRequest]):
    name = "enforce"
    input_model = EnforceRequest
    admin_model = AdminEnforce
    # the settings guard's own adapters and setting actions are granted with it (tests/unit/test_template.py)
    permissions: ClassVar[frozenset[str]] = frozenset({"ecr:DescribeRepositories", "dynamodb:PutItem"})

    def run(self, request: EnforceRequest, tools: AdminTools) -> dict[str, Any]:
        guard = tools.settings_guard(request.dry_run)
        if request.repository is None:
            return self._all(guard, request, tools)
        repository = request.repository
        if guard.settings.profile_for(repository) is None or not tools.governs(repository):
            raise RequestRejected("repository", f"{repository}: no repository_settings profile manages it")
        if request.dry_run:
            preview = _preview(guard, repository)
            if preview is None:
                raise RequestRejected("repository", f"{repository}: no such repository in ECR")
            return {"dry_run": True, **preview}
        if guard.ports.registry.repository(repository) is None:
            raise RequestRejected("repository", f"{repository}: no such repository in ECR")
        outcome = guard.guard(repository, Trigger(f"admin#{tools.request_id}", "admin enforce"))
        return {
            "dry_run": False,
            "repository": repository,
            "result": outcome.result,
            "changes": list(outcome.changes),
            "reports": outcome.reason,
        }

    def _all(self, guard: SettingsGuard, request: EnforceRequest, tools: AdminTools) -> dict[str, Any]:
        if not request.dry_run:
            outcome = guard.start_reconcile(f"admin-{tools.request_id}")
            return {"dry_run": False, "result": outcome.result, "message": outcome.reason}
        names = (n for n in guard.ports.registry.repository_names() if guard.settings.profile_for(n))
        chosen = list(islice(names, DRY_RUN_LIMIT + 1))
        previews = [p for n in chosen[:DRY_RUN_LIMIT] if (p := _preview(guard, n)) is not None]
        return {
            "dry_run": True,
            "repositories": [p for p in previews if p["changes"] or p["reports"]],
            "checked": len(previews),
            "truncated": len(chosen) > DRY_RUN_LIMIT,
        }


def _preview(guard: SettingsGuard, repository: str, scanning: Any = None) -> dict[str, Any] | None:
    """What the guard would change and report, read-only (its evaluation, without its claim, writes or records).
    `scanning`: the registry's scanning configuration, when the caller read it once for many repositories."""
    actual = guard.ports.registry.repository(repository)
    profile = guard.settings.profile_for(repository)
    if actual is None or profile is None:
        return None
    writes = guard.settings.registry_scanning == "enforce"
    if scanning is None:
        scanning = guard.ports.registry.registry_scanning()
    plan = evaluate(profile, actual, scanning, guard.ctx.policy.quarantine_tag_prefix, writes)
    return {
        "repository": repository,
        "profile": plan.profile,
        "changes": [f"{c.setting}: {c.before} -> {c.after}" for c in plan.changes],
        "reports": list(plan.reports),
    }
