"""`report`: what a security review needs about each managed repository, read-only: settings drift (the settings
guard's own evaluation, without its claim, writes or records), image counts by status (the repository's audit
records), quarantined and exempt images (digest, recorded tags, since when, why), exemptions expiring within 14
days, storage (DescribeImages' sizes) with an estimated monthly cost, and what the lifecycle policy would expire
(ECR's preview; "preview unavailable" when ECR refuses or does not finish in time, never a failed report).

Large registries: one invocation reports at most `limit` repositories (and stops early near its time budget) and
answers a `next_token` to continue from; the CLI loops until there is none. The data is JSON; rendering (table,
Markdown, CSV, JSON) is the CLI's (ecr_warden_tools.report_render)."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from ecr_warden.actions.enforce import _preview
from ecr_warden.actions.registry import AdminAction, RequestRejected, Who, Why, register_admin
from ecr_warden.adapters.aws import error_code
from ecr_warden.admin.ports import ImageSummary
from ecr_warden.contracts.common import RepositoryName
from ecr_warden.domain.exemptions import StoredExemption, iso
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.images import ImageRef
from ecr_warden.domain.records import BLOCKED, ImageRecord, ImageStatus
from ecr_warden.errors import ConfigurationError
from ecr_warden.gate.evaluate import Decision, evaluate

if TYPE_CHECKING:
    from ecr_warden.admin.ports import AdminTools, Inventory
    from ecr_warden.repository_settings.service import SettingsGuard

DEFAULT_LIMIT, MAX_LIMIT = 200, 1000
DEFAULT_PRICE = 0.10  # USD per GB-month: ECR private repository storage, us-east-1 list price
GB = 1024**3
EXPIRING_WITHIN = timedelta(days=14)
TIME_BUDGET_SECONDS = 40.0  # of the function's 60 s: stop early and answer a next_token
EXEMPTABLE = frozenset({ImageStatus.PASSED, ImageStatus.AUDITED, ImageStatus.TAGGED, ImageStatus.RELEASED})
PREVIEW_DIGESTS = 20  # expiring digests listed per repository (the count is complete)
PRICING_NOTE = (
    "estimate: ECR storage at {price} USD per GB-month (GB = 2^30 bytes; the default 0.10 is ECR's us-east-1 list "
    "price); data transfer and scanning not included"
)


def decode_token(text: str) -> tuple[str | None, int]:
    """A token this action gave: (ECR's token of the page to read, names of it already done)."""
    try:
        padded = text + "=" * (-len(text) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise ValueError("not a next_token this report gave (copy it whole)") from None
    if not isinstance(state, dict) or set(state) != {"v", "page", "skip"} or state["v"] != 1:
        raise ValueError("not a next_token this report gave (copy it whole)")
    page, skip = state["page"], state["skip"]
    if not (page is None or isinstance(page, str)) or type(skip) is not int or not 0 <= skip <= 1000:
        raise ValueError("not a next_token this report gave (copy it whole)")
    return page, skip


def encode_token(page: str | None, skip: int) -> str:
    text = json.dumps({"v": 1, "page": page, "skip": skip}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _valid_token(text: str) -> str:
    decode_token(text)
    return text


Token = Annotated[str, StringConstraints(min_length=1, max_length=4096), AfterValidator(_valid_token)]


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: RepositoryName | None = None  # none: every managed repository, `limit` per invocation
    next_token: Token | None = None  # from the previous answer
    limit: int = Field(DEFAULT_LIMIT, strict=True, ge=1, le=MAX_LIMIT)
    price_per_gb_month: float = Field(DEFAULT_PRICE, strict=True, ge=0, le=1000, allow_inf_nan=False)
    reason: Why | None = None
    by: Who


class AdminReport(ReportRequest):
    """The admin function's `report` payload (admin/requests.py)."""

    action: Literal["report"]


@register_admin
class Report(AdminAction[ReportRequest]):
    name = "report"
    input_model = ReportRequest
    admin_model = AdminReport
    # its own reads (findings: is a clean image clean only by an exemption?) and its admin-log entry; the settings
    # guard's reads (drift) come with the guard's adapter (tests/unit/test_template.py)
    permissions: ClassVar[frozenset[str]] = frozenset(
        {"ecr:DescribeRepositories", "ecr:DescribeImages", "ecr:StartLifecyclePolicyPreview",
         "ecr:GetLifecyclePolicyPreview", "ecr:DescribeImageScanFindings", "ecr:GetRegistryScanningConfiguration",
         "inspector2:ListFindings", "dynamodb:Query", "dynamodb:PutItem"}
    )  # fmt: skip
    logs_itself: ClassVar[bool] = True  # a compact admin-log entry: the report itself may be large
    budget: ClassVar[float] = TIME_BUDGET_SECONDS
    clock: ClassVar[Any] = staticmethod(time.monotonic)

    def check(self, request: ReportRequest) -> None:
        if request.repository is not None and request.next_token is not None:
            raise RequestRejected("next_token", "not used with one repository (it is reported whole)")

    def run(self, request: ReportRequest, tools: AdminTools) -> dict[str, Any]:
        inventory = tools.inventory
        if inventory is None:
            raise ConfigurationError("this deployment's admin tools offer no inventory (report)")
        guard = tools.settings_guard(True)  # audit mode: evaluation only
        now, started = tools.now(), self.clock()
        if request.repository is not None and not managed(request.repository, tools, guard):
            raise RequestRejected("repository", f"{request.repository}: outside the repositories ecr-warden guards")
        by_repository: dict[str, list[StoredExemption]] = {}
        for exemption in tools.exemptions.query(request.repository):
            by_repository.setdefault(exemption.repository, []).append(exemption)
        sections: list[dict[str, Any]] = []
        reading = _Reading(tools, guard, inventory, request, by_repository)

        def visit(name: str) -> bool:
            """Report one listed repository if managed; False once this invocation is full (the name not done)."""
            if sections and (len(sections) >= request.limit or self.clock() - started > self.budget):
                return False
            if managed(name, tools, guard):
                section = _repository(name, reading)
                if section is not None:
                    sections.append(section)
            return True

        if request.repository is not None:
            visit(request.repository)
            next_token = None
        else:
            next_token = walk(request.next_token, inventory, visit)
        result = {
            "generated_at": iso(now),
            "account": tools.account,
            "region": tools.region,
            "price_per_gb_month": request.price_per_gb_month,
            "pricing": PRICING_NOTE.format(price=f"{request.price_per_gb_month:.4g}"),
            "expiring_within_days": EXPIRING_WITHIN.days,
            "repositories": sections,
            "summary": summarize(sections, request.price_per_gb_month),
            "next_token": next_token,
        }
        logged = request.model_dump(mode="json", exclude_none=True)
        compact = {"repositories": len(sections), "more": next_token is not None}
        tools.exemptions.record(tools.log_entry("report", logged, request.reason, compact))
        return result


def walk(next_token: str | None, inventory: Inventory, visit: Callable[[str], bool]) -> str | None:
    """Visit the registry's repositories from the request's token on (DescribeRepositories pages of 1,000); the
    token to continue from when `visit` says the invocation is full, None when every repository was visited."""
    page_token, skip = decode_token(next_token) if next_token else (None, 0)
    while True:
        try:
            page = inventory.repositories(page_token)
        except Exception as exc:
            if page_token and error_code(exc) == "InvalidParameterException":
                raise RequestRejected("next_token", "ECR no longer accepts it: start the report again") from None
            raise
        for index in range(skip, len(page.names)):
            if not visit(page.names[index]):
                return encode_token(page_token, index)
        if page.next_token is None:
            return None
        page_token, skip = page.next_token, 0


def managed(name: str, tools: AdminTools, guard: SettingsGuard) -> bool:
    if not tools.governs(name):
        return False
    return tools.policy.rule_for(name) is not None or guard.settings.profile_for(name) is not None


def records_of(items: list[dict[str, Any]]) -> list[ImageRecord]:
    """The image records among a partition's items (tag claims and settings items are not images)."""
    found = []
    for item in items:
        if not str(item.get("digest", "")).startswith("sha256:") or "status" not in item:
            continue
        try:
            found.append(ImageRecord.model_validate(item))
        except ValueError:
            continue
    return found


def has_findings(record: ImageRecord) -> bool:
    """A decided image that passes (or was only tagged) although its scan found something."""
    counts = {k: v for k, v in record.severity_counts.items() if k != "TOTAL"}
    return record.status in EXEMPTABLE and any(v > 0 for v in counts.values())


def applicable(exemptions: list[StoredExemption], digest: str) -> list[StoredExemption]:
    return [e for e in exemptions if e.digest in (None, digest)]


def current_findings(tools: AdminTools, repository: str, digest: str, enhanced: list[bool]) -> list[Finding] | None:
    """The image's findings now (Inspector's with enhanced scanning, else ECR's basic scan); None when gone."""
    if not enhanced:
        enhanced.append(tools.scans.scan_type() == "ENHANCED")
    ports = tools.gate.ports
    if enhanced[0]:
        return ports.enhanced.active_findings(repository, digest)
    return ports.registry.basic_findings(repository, digest)


def decide(tools: AdminTools, record: ImageRecord, findings: list[Finding], stored: list[StoredExemption]) -> Decision:
    """The decision the gate would make now (enforce semantics), with the stored exemptions given."""
    image = ImageRef(record.repository, record.digest)
    exemptions = [e.as_policy_exemption() for e in stored]
    return evaluate(tools.policy, image, list(record.original_tags), findings, tools.now(), False, exemptions)


def _since(record: ImageRecord) -> tuple[str, str]:
    """When the image entered its current status, and why (the history entry that put it there)."""
    for entry in reversed(record.history):
        if entry.status == record.status.value:
            return iso(entry.at), entry.reason
    return iso(record.updated_at), ""


@dataclass
class _Reading:
    """One invocation's reads: the ports, the request, the exemptions by repository (one Query), and the registry's
    scanning configuration once read."""

    tools: AdminTools
    guard: SettingsGuard
    inventory: Inventory
    request: ReportRequest
    exemptions: dict[str, list[StoredExemption]]
    scanning: list[Any] = field(default_factory=list)
    enhanced: list[bool] = field(default_factory=list)  # the registry's scan type, once read


def _of_note(
    name: str, records: list[ImageRecord], active: list[StoredExemption], reading: _Reading
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The blocked images, and those that pass only by an exemption: EXEMPT, or decided clean although they have
    findings while an exemption in the store covers them (the decision on the current findings with and without
    it differs: one findings read per such image)."""
    blocked: list[dict[str, Any]] = []
    exempt: list[dict[str, Any]] = []
    for record in sorted(records, key=lambda r: r.digest):
        since, reason = _since(record)
        row = {"digest": record.digest, "status": record.status.value, "tags": list(record.original_tags),
               "since": since, "reason": reason}  # fmt: skip
        if record.status in BLOCKED:
            blocked.append(row)
        elif record.status is ImageStatus.EXEMPT:
            exempt.append(row)
        elif has_findings(record) and (covering := applicable(active, record.digest)):
            findings = current_findings(reading.tools, name, record.digest, reading.enhanced)
            if findings is None:
                continue
            with_it = decide(reading.tools, record, findings, covering)
            if with_it.exempted and with_it.verdict != decide(reading.tools, record, findings, []).verdict:
                exempt.append({**row, "reason": with_it.reasons[-1]})
    return blocked, exempt


def _repository(name: str, reading: _Reading) -> dict[str, Any] | None:
    tools, guard, inventory, request, scanning = (
        reading.tools, reading.guard, reading.inventory, reading.request, reading.scanning
    )  # fmt: skip
    exemptions = reading.exemptions.get(name, [])
    active = [e for e in exemptions if e.state(tools.now()) == "active"]
    images = inventory.images(name)
    if images is None:  # deleted since it was listed
        if request.repository is not None:
            raise RequestRejected("repository", f"{name}: no such repository in ECR")
        return None
    now = tools.now()
    records = records_of(inventory.records(name))
    present = {image.digest for image in images}
    recorded = {r.digest for r in records}
    counts = Counter(r.status.value for r in records if r.digest in present)
    blocked, exempt = _of_note(name, [r for r in records if r.digest in present], active, reading)
    soon = now + EXPIRING_WITHIN
    expiring = sorted(
        (e.summary(now) for e in exemptions if e.state(now) == "active" and e.expires <= soon),
        key=lambda e: (e["expires"], e["cve"]),
    )
    if not scanning and guard.settings.profile_for(name) is not None:
        scanning.append(guard.ports.registry.registry_scanning())
    preview = _preview(guard, name, scanning[0] if scanning else None)
    lifecycle = inventory.lifecycle_preview(name)
    return {
        "repository": name,
        "rule": (rule.name if (rule := tools.policy.rule_for(name)) else None),
        "profile": preview["profile"] if preview else None,
        "drift": {"changes": preview["changes"], "reports": preview["reports"]} if preview else None,
        "images": {
            "total": len(images),
            "by_status": dict(sorted(counts.items())),
            "unrecorded": sum(1 for image in images if image.digest not in recorded),
        },
        "blocked": blocked,
        "exempt": exempt,
        "expiring_exemptions": expiring,
        "storage": _storage(images, request.price_per_gb_month),
        "lifecycle": {
            "available": lifecycle.available,
            "message": lifecycle.message,
            "expiring": lifecycle.expiring,
            "digests": list(lifecycle.digests[:PREVIEW_DIGESTS]),
        },
    }


def _storage(images: list[ImageSummary], price: float) -> dict[str, Any]:
    size = sum(image.size for image in images)
    return {"bytes": size, "gb": round(size / GB, 3), "monthly_cost_usd": round(size / GB * price, 2)}


def summarize(sections: list[dict[str, Any]], price: float) -> dict[str, Any]:
    """Totals over reported repositories (the CLI adds the totals of several invocations with the same function)."""
    statuses: Counter[str] = Counter()
    for section in sections:
        statuses.update(section["images"]["by_status"])
    size = sum(s["storage"]["bytes"] for s in sections)
    return {
        "repositories": len(sections),
        "drifted": sum(1 for s in sections if s["drift"] and (s["drift"]["changes"] or s["drift"]["reports"])),
        "images": sum(s["images"]["total"] for s in sections),
        "by_status": dict(sorted(statuses.items())),
        "blocked": sum(len(s["blocked"]) for s in sections),
        "exempt": sum(len(s["exempt"]) for s in sections),
        "expiring_exemptions": sum(len(s["expiring_exemptions"]) for s in sections),
        "bytes": size,
        "monthly_cost_usd": round(size / GB * price, 2),
        "lifecycle_expiring": sum(s["lifecycle"]["expiring"] for s in sections),
        "previews_unavailable": sum(1 for s in sections if not s["lifecycle"]["available"]),
    }
