"""`exempt`: add, list and revoke CVE exemptions in ecr-warden's own store (not the CloudFormation-managed policy
parameter). The gate reads them at decision time, so one takes effect for the very next decision. Each add and
revoke is written in one transaction with its admin-log entry."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from ecr_warden.actions.registry import AdminAction, RequestRejected, Who, Why, register_admin
from ecr_warden.contracts.common import AwsTimestamp, Digest, RepositoryName
from ecr_warden.domain.exemptions import ExemptionConflict, StoredExemption, iso

if TYPE_CHECKING:
    from ecr_warden.admin.ports import AdminTools


def _finding_id(value: Any) -> Any:
    """CVE ids in upper case, GitHub advisory ids as GitHub writes them (GHSA- and lower case)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text[:4].upper() == "CVE-":
        return text.upper()
    if text[:5].upper() == "GHSA-":
        return "GHSA-" + text[5:].lower()
    return text


FindingId = Annotated[
    str,
    BeforeValidator(_finding_id),
    StringConstraints(pattern=r"^(?:CVE-\d{4}-\d{4,7}|GHSA-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})$"),
]
EMAIL = r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+\.[A-Za-z]{2,}$"  # looks like an e-mail address
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, pattern=EMAIL)]

FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {  # operation -> (required, allowed besides `by`)
    "add": (
        frozenset({"repository", "cve", "expires", "reason", "approver"}),
        frozenset({"repository", "cve", "digest", "expires", "reason", "approver"}),
    ),
    "list": (frozenset(), frozenset({"repository", "include_inactive"})),
    "revoke": (frozenset({"repository", "cve", "reason"}), frozenset({"repository", "cve", "digest", "reason"})),
}


class ExemptRequest(BaseModel):
    """One model for the three operations; which fields each needs is checked before any AWS call (check())."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    operation: Literal["add", "list", "revoke"]
    repository: RepositoryName | None = None
    cve: FindingId | None = None  # CVE-YYYY-NNNN+ or GHSA-xxxx-xxxx-xxxx
    digest: Digest | None = None  # only this image; none: every image of the repository
    expires: AwsTimestamp | None = None  # a date (midnight UTC) or a date-time; no later than max_exemption_days
    reason: Why | None = None
    approver: Email | None = None
    include_inactive: bool = Field(False, strict=True)  # list: expired and revoked ones too
    by: Who


class AdminExempt(ExemptRequest):
    """The admin function's `exempt` payload (admin/requests.py)."""

    action: Literal["exempt"]


@register_admin
class Exempt(AdminAction[ExemptRequest]):
    name = "exempt"
    input_model = ExemptRequest
    admin_model = AdminExempt
    permissions: ClassVar[frozenset[str]] = frozenset(
        {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "ecr:DescribeRepositories",
         "ecr:DescribeImages"}
    )  # fmt: skip
    logs_itself: ClassVar[bool] = True

    def check(self, request: ExemptRequest) -> None:
        required, allowed = FIELDS[request.operation]
        given = request.model_fields_set - {"action", "operation", "by"}
        for name in sorted(required):
            if getattr(request, name) is None:
                raise RequestRejected(name, f"required by exempt {request.operation}")
        for name in sorted(given - allowed):
            raise RequestRejected(name, f"not used by exempt {request.operation}")

    def run(self, request: ExemptRequest, tools: AdminTools) -> dict[str, Any]:
        if request.operation == "add":
            return self._add(request, tools)
        if request.operation == "revoke":
            return self._revoke(request, tools)
        return self._list(request, tools)

    def _add(self, request: ExemptRequest, tools: AdminTools) -> dict[str, Any]:
        assert request.repository is not None and request.cve is not None and request.expires is not None  # noqa: PT018
        assert request.reason is not None and request.approver is not None  # noqa: PT018 - check() made sure
        now, policy = tools.now(), tools.policy
        latest = now + timedelta(days=policy.max_exemption_days)
        if request.expires <= now:
            raise RequestRejected("expires", f"{iso(request.expires)} is not in the future")
        if request.expires > latest:
            raise RequestRejected(
                "expires", f"at most {policy.max_exemption_days} days ahead (policy max_exemption_days): {iso(latest)}"
            )
        repository = request.repository
        _managed(tools, repository)
        if request.digest is not None and tools.gate.ports.registry.describe(repository, request.digest) is None:
            raise RequestRejected("digest", f"{repository}@{request.digest} does not exist")
        where = repository + (f"@{request.digest}" if request.digest else "")
        current = tools.exemptions.get(repository, request.cve, request.digest)
        if current is not None and current.request_id == tools.request_id:
            return _added(current, tools, where, "already added by this request")  # Lambda's retry of it
        if current is not None and current.state(now) == "active":
            raise RequestRejected(
                "cve", f"{request.cve} is exempted in {where} until {iso(current.expires)} already: revoke it first"
            )
        exemption = StoredExemption(
            repository=repository, cve=request.cve, digest=request.digest, expires=request.expires,
            reason=request.reason, approver=request.approver, added_by=tools.who, added_at=now,
            request_id=tools.request_id,
        )  # fmt: skip
        result = _added(exemption, tools, where, "added")
        log = tools.log_entry("exempt", _request(request), request.reason, result)
        try:
            tools.exemptions.add(exemption, log, now)
        except ExemptionConflict as conflict:
            if conflict.current is not None and conflict.current.request_id == tools.request_id:
                return result  # this request's own write, whose answer was lost
            message = f"{request.cve} was exempted in {where} concurrently: list, then retry"
            raise RequestRejected("cve", message) from None
        return result

    def _revoke(self, request: ExemptRequest, tools: AdminTools) -> dict[str, Any]:
        assert request.repository is not None and request.cve is not None and request.reason is not None  # noqa: PT018
        now, repository = tools.now(), request.repository
        where = repository + (f"@{request.digest}" if request.digest else "")
        current = tools.exemptions.get(repository, request.cve, request.digest)
        if current is not None and current.revoke_request_id == tools.request_id:
            return {"exemption": current.summary(now), "message": f"{request.cve} in {where}: revoked"}  # a retry
        if current is None or current.state(now) != "active":
            raise RequestRejected("cve", f"no active exemption of {request.cve} in {where}")
        revoked = replace(
            current, revoked_at=now, revoked_by=tools.who, revoke_reason=request.reason,
            revoke_request_id=tools.request_id,
        )  # fmt: skip
        result = {
            "exemption": revoked.summary(now),
            "message": f"{request.cve} in {where}: revoked; the next decision counts it again",
        }
        log = tools.log_entry("exempt", _request(request), request.reason, result)
        try:
            tools.exemptions.revoke(current, tools.who, request.reason, tools.request_id, log, now)
        except ExemptionConflict as conflict:
            if conflict.current is not None and conflict.current.revoke_request_id == tools.request_id:
                return result
            raise RequestRejected("cve", f"the exemption of {request.cve} in {where} changed concurrently") from None
        return result

    def _list(self, request: ExemptRequest, tools: AdminTools) -> dict[str, Any]:
        now = tools.now()
        found = [
            e.summary(now)
            for e in tools.exemptions.query(request.repository)
            if request.include_inactive or e.state(now) == "active"
        ]
        found.sort(key=lambda e: (e["repository"], e["cve"], e["digest"] or ""))
        result = {"exemptions": found, "count": len(found)}
        tools.exemptions.record(tools.log_entry("exempt", _request(request), request.reason, {"count": len(found)}))
        return result


def _managed(tools: AdminTools, repository: str) -> None:
    if not tools.governs(repository) or tools.policy.rule_for(repository) is None:
        raise RequestRejected("repository", f"{repository}: outside the repositories ecr-warden guards")
    if tools.scans.repository_arn(repository) is None:
        raise RequestRejected("repository", f"{repository}: no such repository in ECR")


def _added(exemption: StoredExemption, tools: AdminTools, where: str, what: str) -> dict[str, Any]:
    message = (
        f"{exemption.cve} exempted in {where} until {exemption.expires:%Y-%m-%d}, approved by {exemption.approver} "
        f"({what}): it applies from the next decision"
    )
    return {"exemption": exemption.summary(tools.now()), "message": message}


def _request(request: BaseModel) -> dict[str, Any]:
    dumped: dict[str, Any] = request.model_dump(mode="json", exclude_none=True)
    return dumped
