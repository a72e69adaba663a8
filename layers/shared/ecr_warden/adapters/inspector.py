"""Amazon Inspector: the active findings of one ECR image (enhanced scanning)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ecr_warden.adapters.aws import client
from ecr_warden.contracts.aws_events import Inspector2FindingDetail
from ecr_warden.contracts.findings import from_inspector
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.images import Scope

IAM_ACTIONS = frozenset({"inspector2:ListFindings"})


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
