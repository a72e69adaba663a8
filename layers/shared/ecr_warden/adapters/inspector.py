"""Amazon Inspector: the active findings of one ECR image (enhanced scanning)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ecr_warden.adapters.aws import client
from ecr_warden.contracts.aws_events import Inspector2FindingDetail
from ecr_warden.contracts.findings import from_inspector
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.images import Scope

IAM_ACTIONS = frozenset({"inspector2:ListFindings", "inspector2:ListCoverage"})


@dataclass
class InspectorFindings:
    _client: Any = field(default=None)
    scope: Scope | None = None

    def active_findings(self, repository: str, digest: str) -> list[Finding]:
        inspector = self._client or client("inspector2", self.scope)
        criteria = {
            "ecrImageRepositoryName": [{"comparison": "EQUALS", "value": repository}],
            "ecrImageHash": [{"comparison": "EQUALS", "value": digest}],
            "findingStatus": [{"comparison": "EQUALS", "value": "ACTIVE"}],
        }
        findings: list[Finding] = []
        for page in inspector.get_paginator("list_findings").paginate(
            filterCriteria=criteria, PaginationConfig={"PageSize": 100}
        ):
            findings.extend(
                from_inspector(Inspector2FindingDetail.model_validate(item)) for item in page.get("findings", [])
            )
        return findings

    def coverage(self, repository: str, digest: str, repository_arn: str) -> tuple[str, str | None] | None:
        """Inspector's scan status of one image (status code, reason), or None when it does not cover it."""
        inspector = self._client or client("inspector2", self.scope)
        criteria = {
            "resourceType": [{"comparison": "EQUALS", "value": "AWS_ECR_CONTAINER_IMAGE"}],
            "resourceId": [{"comparison": "EQUALS", "value": f"{repository_arn}/{digest}"}],
        }
        for page in inspector.get_paginator("list_coverage").paginate(
            filterCriteria=criteria, PaginationConfig={"PageSize": 200}
        ):
            for resource in page.get("coveredResources", []):
                status = resource.get("scanStatus") or {}
                return str(status.get("statusCode", "UNKNOWN")), status.get("reason")
        return None
