"""The admin function's payload: a discriminated union on `action`, one model per action (the action's own input
model plus the `action` field). `parse` turns any payload into one of them, or into one RequestRejected naming the
first field at fault; nothing is read or written before that.

    {"action": "release",    "repository": R, "digest": D, "reason": ..., "by": ...}
    {"action": "quarantine", "repository": R, "tag": T | "digest": D, "reason": ..., "by": ...}
    {"action": "exempt", "operation": "add", "repository": R, "cve": "CVE-2024-6387", ["digest": D,]
        "expires": "2026-12-31", "reason": ..., "approver": "security@example.com", "by": ...}
    {"action": "exempt", "operation": "list", ["repository": R,] ["include_inactive": true,] "by": ...}
    {"action": "exempt", "operation": "revoke", "repository": R, "cve": ..., ["digest": D,] "reason": ..., "by": ...}
    {"action": "rescan",     "repository": R, "tag": T | "digest": D, "reason": ..., "by": ...}
    {"action": "enforce",    ["repository": R,] "dry_run": true, "reason": ..., "by": ...}
    {"action": "report",     ["repository": R,] ["next_token": T,] ["limit": 200,] ["price_per_gb_month": 0.10,]
        "by": ...}
    {"action": "sweep",      ["next_token": T,] ["limit": 200,] ["reason": ...,] "by": ...}
    {"action": "run", "operation": "start", "job": "reconcile" | "sweep" | "report", ["accounts": "self" |
        "organization" | [ids],] ["regions": [...],] "by": ...}
    {"action": "run", "operation": "status", "run_id": ..., ["rows": 50,] "by": ...}

Organization mode: any request but `run` may name the registry it acts in, `"account": "210987654321",
"region": "ap-northeast-1"` (the image's, as decisions name it); default: the deployment's own.
"""

from __future__ import annotations

import functools
import operator
import re
from typing import TYPE_CHECKING, Annotated, Any, cast

from pydantic import Field, ValidationError

from ecr_warden.actions.registry import MODULES, RequestRejected, action_class

if TYPE_CHECKING:  # the union as a type; at run time only the named action's module is imported (a cold start)
    from ecr_warden.actions.enforce import AdminEnforce
    from ecr_warden.actions.exempt import AdminExempt
    from ecr_warden.actions.quarantine import AdminQuarantine
    from ecr_warden.actions.release import AdminRelease
    from ecr_warden.actions.report import AdminReport
    from ecr_warden.actions.rescan import AdminRescan
    from ecr_warden.actions.run import AdminRun
    from ecr_warden.actions.sweep import AdminSweep

    AdminRequest = Annotated[
        AdminRelease | AdminQuarantine | AdminExempt | AdminRescan | AdminEnforce | AdminReport | AdminSweep | AdminRun,
        Field(discriminator="action"),
    ]

ACTION_NAMES = tuple(MODULES)


def request_union() -> Any:
    """The payload as one discriminated union on `action`, every action imported (its JSON schema, for docs)."""
    models = [action_class(name).admin_model for name in ACTION_NAMES]
    return Annotated[functools.reduce(operator.or_, models), Field(discriminator="action")]


class InvalidRequest(RequestRejected):
    """The payload itself is invalid (not the state it meets)."""


_ACCOUNT = re.compile(r"\d{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")


def split_target(payload: Any) -> tuple[Any, str | None, str | None]:
    """The registry a request acts in (organization mode: `account` and `region`, the image's), taken out of the
    payload; None where the request doesn't say (the deployment's own). `run` names its registries itself."""
    if not isinstance(payload, dict) or payload.get("action") == "run":
        return payload, None, None
    rest = {k: v for k, v in payload.items() if k not in ("account", "region")}
    account, region = payload.get("account"), payload.get("region")
    if account is not None and not (isinstance(account, str) and _ACCOUNT.fullmatch(account)):
        raise InvalidRequest("account", "a 12-digit AWS account id")
    if region is not None and not (isinstance(region, str) and _REGION.fullmatch(region)):
        raise InvalidRequest("region", "an AWS region name, e.g. ap-northeast-1")
    return rest, account, region


def parse(payload: Any) -> AdminRequest:
    if not isinstance(payload, dict):
        raise InvalidRequest("<root>", "the payload must be a JSON object")
    action = payload.get("action")
    if not isinstance(action, str) or action not in ACTION_NAMES:
        raise InvalidRequest("action", f"unknown or missing; use one of {', '.join(ACTION_NAMES)}")
    model = action_class(action).admin_model  # its model is built at its module's import: only this action's
    try:
        request = model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = list(first["loc"])
        field = ".".join(str(part) for part in loc) or "<root>"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise InvalidRequest(field, str(first["msg"])[:300] + more) from None
    return cast("AdminRequest", request)
