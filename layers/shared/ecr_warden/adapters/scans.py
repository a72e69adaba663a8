"""What the admin function asks ECR and Inspector about scanning: does a repository exist, which scanner the registry
uses, start a basic scan, and Inspector's coverage of an image (enhanced scanning cannot be restarted by hand)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecr_warden.adapters.aws import client, error_code
from ecr_warden.adapters.registry import image_detail
from ecr_warden.admin.ports import Coverage, ScanLimitError
from ecr_warden.domain.images import Scope

IAM_ACTIONS = frozenset(
    {
        "ecr:DescribeRepositories",
        "ecr:DescribeImages",
        "ecr:GetRegistryScanningConfiguration",
        "ecr:StartImageScan",
        "inspector2:ListCoverage",
    }
)
_GONE = frozenset({"RepositoryNotFoundException", "ImageNotFoundException"})


@dataclass
class EcrScans:
    _ecr: Any = field(default=None)
    _inspector: Any = field(default=None)
    scope: Scope | None = None

    @property
    def ecr(self) -> Any:
        return self._ecr or client("ecr", self.scope)

    @property
    def inspector(self) -> Any:
        return self._inspector or client("inspector2", self.scope)

    def repository_arn(self, repository: str) -> str | None:
        """The repository's ARN, or None when it does not exist."""
        try:
            found = self.ecr.describe_repositories(repositoryNames=[repository]).get("repositories") or []
        except Exception as exc:
            if error_code(exc) in _GONE:
                return None
            raise
        return str(found[0]["repositoryArn"]) if found else None

    def scan_type(self) -> str:
        """BASIC or ENHANCED: the registry's scanning configuration."""
        response = self.ecr.get_registry_scanning_configuration()
        return str((response.get("scanningConfiguration") or {}).get("scanType") or "BASIC")

    def start_scan(self, repository: str, digest: str) -> str:
        """Start a basic scan; the status ECR answers (IN_PROGRESS, ...). ScanLimitError at ECR's daily limit."""
        try:
            response = self.ecr.start_image_scan(repositoryName=repository, imageId={"imageDigest": digest})
        except Exception as exc:
            if error_code(exc) == "LimitExceededException":
                raise ScanLimitError(str(exc)) from exc
            raise
        return str((response.get("imageScanStatus") or {}).get("status") or "IN_PROGRESS")

    def last_scan(self, repository: str, digest: str) -> datetime | None:
        """When the image's last basic scan completed, if ECR says."""
        detail = image_detail(self.ecr, repository, {"imageDigest": digest})
        summary = (detail.get("imageScanFindingsSummary") or {}) if detail else {}
        completed = summary.get("imageScanCompletedAt")
        return completed if isinstance(completed, datetime) else None

    def coverage(self, repository_arn: str, digest: str) -> Coverage | None:
        """Inspector's coverage of one image (ListCoverage), or None when Inspector does not cover it."""
        criteria = {
            "resourceType": [{"comparison": "EQUALS", "value": "AWS_ECR_CONTAINER_IMAGE"}],
            "resourceId": [{"comparison": "EQUALS", "value": f"{repository_arn}/{digest}"}],
        }
        for page in self.inspector.get_paginator("list_coverage").paginate(
            filterCriteria=criteria, PaginationConfig={"PageSize": 200}
        ):
            for resource in page.get("coveredResources", []):
                status = resource.get("scanStatus") or {}
                last = resource.get("lastScannedAt")
                return Coverage(
                    str(status.get("statusCode", "UNKNOWN")),
                    status.get("reason"),
                    last if isinstance(last, datetime) else None,
                    resource.get("scanMode"),
                )
        return None
