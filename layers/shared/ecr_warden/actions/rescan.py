"""`rescan`: ask for a new scan of one image. Basic scanning: StartImageScan (ECR allows one per image per 24
hours; at the limit the answer says when the next is possible). Enhanced scanning: Inspector scans continuously and
cannot be asked to rescan one image, so the answer is Inspector's last scan time and coverage status instead."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from ecr_warden.actions.quarantine import Tag, governed, resolve
from ecr_warden.actions.registry import AdminAction, RequestRejected, Who, Why, register_admin
from ecr_warden.admin.ports import ScanLimitError
from ecr_warden.contracts.common import Digest, RepositoryName
from ecr_warden.domain.exemptions import iso

if TYPE_CHECKING:
    from ecr_warden.admin.ports import AdminTools

BASIC_SCAN_INTERVAL = timedelta(hours=24)


class RescanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: RepositoryName
    digest: Digest | None = None
    tag: Tag | None = None
    reason: Why
    by: Who


class AdminRescan(RescanRequest):
    """The admin function's `rescan` payload (admin/requests.py)."""

    action: Literal["rescan"]


@register_admin
class Rescan(AdminAction[RescanRequest]):
    name = "rescan"
    input_model = RescanRequest
    admin_model = AdminRescan
    permissions: ClassVar[frozenset[str]] = frozenset(
        {
            "ecr:DescribeRepositories",
            "ecr:DescribeImages",
            "ecr:GetRegistryScanningConfiguration",
            "ecr:StartImageScan",
            "inspector2:ListCoverage",
            "dynamodb:PutItem",
        }
    )

    def check(self, request: RescanRequest) -> None:
        if (request.digest is None) == (request.tag is None):
            raise RequestRejected("digest", "give the image's digest or its tag (exactly one)")

    def run(self, request: RescanRequest, tools: AdminTools) -> dict[str, Any]:
        actor, repository = tools.gate.actor, request.repository
        if not tools.governs(repository):
            raise RequestRejected("repository", f"{repository}: outside the repositories ecr-warden guards")
        governed(actor, repository)
        arn = tools.scans.repository_arn(repository)
        if arn is None:
            raise RequestRejected("repository", f"{repository}: no such repository in ECR")
        digest = resolve(actor, repository, request.digest, request.tag)
        image = f"{repository}@{digest}"
        if tools.scans.scan_type() == "ENHANCED":
            coverage = tools.scans.coverage(arn, digest)
            if coverage is None:
                message = f"{image}: Inspector does not cover this image (enhanced scanning, no coverage): no scan"
                return {"scanner": "enhanced", "started": False, "digest": digest, "message": message}
            last = iso(coverage.last_scanned_at) if coverage.last_scanned_at else None
            message = (
                f"{image}: enhanced scanning rescans on its own (Inspector cannot be asked to rescan one image); "
                f"coverage {coverage.status}" + (f" ({coverage.reason})" if coverage.reason else "")
                + f", last scanned {last or 'never'}"
            )  # fmt: skip
            return {
                "scanner": "enhanced", "started": False, "digest": digest, "coverage": coverage.status,
                "coverage_reason": coverage.reason, "last_scanned_at": last, "scan_mode": coverage.scan_mode,
                "message": message,
            }  # fmt: skip
        try:
            status = tools.scans.start_scan(repository, digest)
        except ScanLimitError:
            # Not an error: the image was scanned within the day (maybe by this very request, whose first run
            # failed after starting it), and that scan's result is decided on like any other.
            last_scan = tools.scans.last_scan(repository, digest)
            when = iso(last_scan + BASIC_SCAN_INTERVAL) if last_scan else "24 hours after its last scan"
            message = (
                f"{image}: not started: a basic scan ran {iso(last_scan) if last_scan else 'within the last day'} "
                f"(ECR allows one per image per 24 hours; its result is decided like any scan); the next is "
                f"possible {when}"
            )
            return {
                "scanner": "basic", "started": False, "digest": digest, "next_possible_at": when,
                "last_scan_started_at": iso(last_scan) if last_scan else None, "message": message,
            }  # fmt: skip
        message = f"{image}: basic scan started ({status}); the gate decides on its result as on any scan"
        return {"scanner": "basic", "started": True, "digest": digest, "status": status, "message": message}
