"""The local stack's stand-in for Inspector (enhanced) and ECR basic scanning.

Findings come from a fixture the user chooses; they are then served by the same APIs the real services offer
(Inspector2 ListFindings, ECR DescribeImageScanFindings) and announced with the events the real services emit.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from ecr_warden.domain.images import Scope
from ecr_warden.domain.severity import SEVERITIES

FIXTURES = ("critical", "high", "clean")


def load_fixture(name_or_path: str) -> list[dict[str, Any]]:
    """A bundled fixture by name (critical, high, clean) or a JSON file with {"findings": [...]}."""
    if name_or_path in FIXTURES:
        text = resources.files("ecr_warden_tools.local").joinpath(f"fixtures/{name_or_path}.json").read_text("utf-8")
    else:
        text = Path(name_or_path).read_text(encoding="utf-8")
    document = json.loads(text)
    findings = document["findings"] if isinstance(document, dict) else document
    if not isinstance(findings, list):
        raise ValueError(f"fixture {name_or_path}: 'findings' must be a list")
    return findings


def _human_time(moment: datetime) -> str:
    # Inspector writes event timestamps for people, e.g. "Dec 3, 2021, 6:02:30 PM".
    return moment.strftime("%b %-d, %Y, %-I:%M:%S %p")


@dataclass
class ScannedImage:
    repository: str
    digest: str
    tags: list[str]
    scanner: str
    findings: list[dict[str, Any]]
    scanned_at: datetime
    listed_from: datetime  # ListFindings/DescribeImageScanFindings show nothing before (AWS documents the lag)
    scope: Scope  # the registry (account and region) the image is in; its findings are that account's

    def listed(self) -> list[dict[str, Any]]:
        return self.findings if datetime.now(UTC) >= self.listed_from else []


class Scanner:
    """One scanner per region of every account, as Inspector and ECR scanning are: what it serves is in the caller's
    scope only."""

    def __init__(self, region: str, account_id: str) -> None:
        self.region, self.account_id = region, account_id
        self._images: dict[tuple[Scope, str, str], ScannedImage] = {}
        self._lock = threading.Lock()

    def _scope(self, scope: Scope | None) -> Scope:
        return scope or Scope(self.account_id, self.region)

    def record(  # noqa: PLR0913 - the image (scope, repository, digest, tags) and what its scan found
        self,
        repository: str,
        digest: str,
        tags: list[str],
        scanner: str,
        fixture: list[dict[str, Any]],
        findings_lag: float = 0.0,
        scope: Scope | None = None,
    ) -> ScannedImage:
        now = datetime.now(UTC)
        lag = timedelta(seconds=findings_lag)
        image = ScannedImage(repository, digest, tags, scanner, fixture, now, now + lag, self._scope(scope))
        with self._lock:
            self._images[(image.scope, repository, digest)] = image
        return image

    def get(self, repository: str, digest: str, scope: Scope | None = None) -> ScannedImage | None:
        with self._lock:
            return self._images.get((self._scope(scope), repository, digest))

    def all(self, scope: Scope | None = None) -> list[ScannedImage]:
        """The images scanned in `scope` (default: the stack's own account and region)."""
        wanted = self._scope(scope)
        with self._lock:
            return [image for key, image in self._images.items() if key[0] == wanted]

    # -- Inspector2 ---------------------------------------------------------------------------------------------

    @staticmethod
    def repository_arn(image: ScannedImage) -> str:
        return f"arn:aws:ecr:{image.scope.region}:{image.scope.account}:repository/{image.repository}"

    def inspector_finding(
        self, image: ScannedImage, item: dict[str, Any], *, status: str = "ACTIVE", for_event: bool = False
    ) -> dict[str, Any]:
        """A finding in Inspector's shape: epoch timestamps over the API, human strings in events."""
        finding_id = hashlib.sha256(f"{image.repository}{image.digest}{item['vulnerabilityId']}".encode()).hexdigest()
        moment: Any = _human_time(image.scanned_at) if for_event else image.scanned_at.timestamp()
        account, region = image.scope.account, image.scope.region
        return {
            "awsAccountId": account,
            "findingArn": f"arn:aws:inspector2:{region}:{account}:finding/{finding_id[:32]}",
            "type": "PACKAGE_VULNERABILITY",
            "title": item.get("title", item["vulnerabilityId"]),
            "description": item.get("description", f"{item['vulnerabilityId']} in {item['package']}"),
            "severity": item["severity"],
            "status": status,
            "firstObservedAt": moment,
            "lastObservedAt": moment,
            "updatedAt": moment,
            "inspectorScore": item.get("cvss"),
            "exploitAvailable": item.get("exploitAvailable", "NO"),
            "fixAvailable": item.get("fixAvailable", "NO"),
            "remediation": {"recommendation": {"text": "None Provided"}},
            "resources": [
                {
                    "type": "AWS_ECR_CONTAINER_IMAGE",
                    "id": f"{self.repository_arn(image)}/{image.digest}",
                    "partition": "aws",
                    "region": region,
                    "details": {
                        "awsEcrContainerImage": {
                            "repositoryName": image.repository,
                            "imageHash": image.digest,
                            "imageTags": image.tags,
                            "registry": account,
                            "platform": "UBUNTU_22_04",
                            "architecture": "arm64",
                            "pushedAt": moment,
                        }
                    },
                }
            ],
            "packageVulnerabilityDetails": {
                "vulnerabilityId": item["vulnerabilityId"],
                "source": "NVD",
                "sourceUrl": f"https://nvd.nist.gov/vuln/detail/{item['vulnerabilityId']}",
                "referenceUrls": item.get("referenceUrls", []),
                "vendorSeverity": item["severity"],
                "cvss": [
                    {
                        "baseScore": item["cvss"],
                        "scoringVector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                        "source": "NVD",
                        "version": "3.1",
                    }
                ]
                if item.get("cvss") is not None
                else [],
                "vulnerablePackages": [
                    {
                        "name": item["package"],
                        "version": item.get("version", ""),
                        "packageManager": item.get("packageManager", "OS"),
                        **({"fixedInVersion": item["fixedInVersion"]} if item.get("fixedInVersion") else {}),
                    }
                ],
            },
        }

    def list_findings(self, request: dict[str, Any], scope: Scope | None = None) -> dict[str, Any]:
        """Inspector2 ListFindings over the scans in the caller's scope, honouring the filters ecr-warden and users
        send."""
        criteria = request.get("filterCriteria") or {}

        def accepts(key: str, value: str) -> bool:
            filters = criteria.get(key) or []
            return not filters or any(
                (f.get("comparison") == "EQUALS" and f.get("value") == value)
                or (f.get("comparison") == "PREFIX" and value.startswith(f.get("value", "")))
                or (f.get("comparison") == "NOT_EQUALS" and f.get("value") != value)
                for f in filters
            )

        matched = [
            self.inspector_finding(image, item)
            for image in self.all(scope)
            if image.scanner == "enhanced"
            and accepts("ecrImageRepositoryName", image.repository)
            and accepts("ecrImageHash", image.digest)
            for item in image.listed()
            if accepts("severity", item["severity"]) and accepts("findingStatus", "ACTIVE")
        ]
        start = int(request.get("nextToken") or 0)
        size = int(request.get("maxResults") or 50)
        page = matched[start : start + size]
        response: dict[str, Any] = {"findings": page}
        if start + size < len(matched):
            response["nextToken"] = str(start + size)
        return response

    def list_coverage(self, request: dict[str, Any], scope: Scope | None = None) -> dict[str, Any]:
        """Inspector2 ListCoverage for ECR images: the images this scanner scanned are ACTIVE; others are not
        covered (an empty page, as Inspector answers for an image it does not know)."""
        criteria = request.get("filterCriteria") or {}
        wanted = {f.get("value") for f in criteria.get("resourceId") or [] if f.get("comparison") == "EQUALS"}
        covered = [
            {
                "accountId": image.scope.account,
                "resourceId": f"{self.repository_arn(image)}/{image.digest}",
                "resourceType": "AWS_ECR_CONTAINER_IMAGE",
                "scanType": "PACKAGE",
                "scanStatus": {"statusCode": "ACTIVE", "reason": "SUCCESSFUL"},
                "resourceMetadata": {"ecrImage": {"tags": image.tags}},
            }
            for image in self.all(scope)
            if image.scanner == "enhanced" and (not wanted or f"{self.repository_arn(image)}/{image.digest}" in wanted)
        ]
        return {"coveredResources": covered}

    # -- ECR basic scanning -------------------------------------------------------------------------------------

    def describe_image_scan_findings(self, image: ScannedImage, request: dict[str, Any]) -> dict[str, Any]:
        findings = [
            {
                "name": item["vulnerabilityId"],
                "description": item.get("title", item["vulnerabilityId"]),
                "uri": f"https://nvd.nist.gov/vuln/detail/{item['vulnerabilityId']}",
                "severity": item["severity"],
                "attributes": [
                    {"key": "package_name", "value": item["package"]},
                    {"key": "package_version", "value": item.get("version", "")},
                    *([{"key": "CVSS3_SCORE", "value": str(item["cvss"])}] if item.get("cvss") is not None else []),
                ],
            }
            for item in image.listed()
        ]
        start = int(request.get("nextToken") or 0)
        size = int(request.get("maxResults") or 100)
        response: dict[str, Any] = {
            "registryId": image.scope.account,
            "repositoryName": image.repository,
            "imageId": {"imageDigest": image.digest, **({"imageTag": image.tags[0]} if image.tags else {})},
            "imageScanStatus": {"status": "COMPLETE", "description": "The scan was completed successfully."},
            "imageScanFindings": {
                "imageScanCompletedAt": image.scanned_at.timestamp(),
                "vulnerabilitySourceUpdatedAt": image.scanned_at.timestamp(),
                "findingSeverityCounts": self.counts(image, omit_zero=True),
                "findings": findings[start : start + size],
            },
        }
        if start + size < len(findings):
            response["nextToken"] = str(start + size)
        return response

    # -- events -------------------------------------------------------------------------------------------------

    @staticmethod
    def counts(image: ScannedImage, omit_zero: bool) -> dict[str, int]:
        counted = Counter(item["severity"] for item in image.findings)
        if omit_zero:  # ECR basic scanning leaves zero counts out
            return {severity: counted[severity] for severity in SEVERITIES if counted[severity]}
        result = {severity: counted[severity] for severity in SEVERITIES[:5]}
        result["TOTAL"] = sum(counted.values())
        return result

    def scan_events(self, image: ScannedImage, finding_events: bool) -> list[dict[str, Any]]:
        """The events the real scanner emits when it finishes: per-finding events first, then scan-complete."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        envelope = {"version": "0", "account": image.scope.account, "time": now, "region": image.scope.region}
        repo_arn = self.repository_arn(image)
        events: list[dict[str, Any]] = []
        if image.scanner == "enhanced":
            if finding_events:
                for item in image.findings:
                    finding = self.inspector_finding(image, item, for_event=True)
                    events.append(
                        {
                            **envelope,
                            "id": str(uuid.uuid4()),
                            "detail-type": "Inspector2 Finding",
                            "source": "aws.inspector2",
                            "resources": [finding["resources"][0]["id"]],
                            "detail": finding,
                        }
                    )
            events.append(
                {
                    **envelope,
                    "id": str(uuid.uuid4()),
                    "detail-type": "Inspector2 Scan",
                    "source": "aws.inspector2",
                    "resources": [repo_arn],
                    "detail": {
                        "scan-status": "INITIAL_SCAN_COMPLETE",
                        "repository-name": repo_arn,
                        "finding-severity-counts": self.counts(image, omit_zero=False),
                        "image-digest": image.digest,
                        "image-tags": image.tags,
                        "version": "1.0",
                    },
                }
            )
        else:
            events.append(
                {
                    **envelope,
                    "id": str(uuid.uuid4()),
                    "detail-type": "ECR Image Scan",
                    "source": "aws.ecr",
                    "resources": [repo_arn],
                    "detail": {
                        "scan-status": "COMPLETE",
                        "repository-name": image.repository,
                        "finding-severity-counts": self.counts(image, omit_zero=True),
                        "image-digest": image.digest,
                        "image-tags": image.tags,
                    },
                }
            )
        return events
