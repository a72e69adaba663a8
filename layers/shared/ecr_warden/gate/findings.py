"""One finding shape for the gate, whichever scanner produced it."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict

from ecr_warden.contracts.aws_events import Inspector2FindingDetail
from ecr_warden.contracts.common import SEVERITIES, severity_rank


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    vulnerability_id: str
    severity: str
    package: str | None = None
    installed_version: str | None = None
    fixed_version: str | None = None
    cvss: float | None = None
    exploit_available: bool | None = None
    fix_available: bool | None = None
    url: str | None = None

    @property
    def rank(self) -> int:
        return severity_rank(self.severity)


def _yes_no(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.upper() == "YES" if value.upper() in ("YES", "NO") else None


def from_inspector(detail: Inspector2FindingDetail) -> Finding:
    """From an Inspector finding (ListFindings item or `Inspector2 Finding` event detail)."""
    vuln = detail.package_vulnerability_details
    package = vuln.vulnerable_packages[0] if vuln and vuln.vulnerable_packages else None
    cvss = next(
        (score.base_score for score in (vuln.cvss if vuln else []) if score.base_score is not None),
        detail.inspector_score,
    )
    return Finding(
        vulnerability_id=vuln.vulnerability_id if vuln else (detail.title or detail.finding_arn),
        severity=detail.severity.upper(),
        package=package.name if package else None,
        installed_version=package.version if package else None,
        fixed_version=package.fixed_in_version if package else None,
        cvss=cvss,
        exploit_available=_yes_no(detail.exploit_available),
        fix_available=_yes_no(detail.fix_available),
        url=(vuln.source_url or (vuln.reference_urls[0] if vuln.reference_urls else None)) if vuln else None,
    )


def from_basic(item: dict[str, Any]) -> Finding:
    """From an ECR basic-scanning finding (DescribeImageScanFindings `findings` item)."""
    attributes = {a.get("key"): a.get("value") for a in item.get("attributes") or []}
    score = attributes.get("CVSS3_SCORE") or attributes.get("CVSS2_SCORE")
    try:
        cvss = float(score) if score else None
    except ValueError:
        cvss = None
    return Finding(
        vulnerability_id=str(item.get("name", "unknown")),
        severity=str(item.get("severity", "UNDEFINED")).upper(),
        package=attributes.get("package_name"),
        installed_version=attributes.get("package_version"),
        cvss=cvss,
        url=item.get("uri"),
    )


def count_by_severity(findings: list[Finding]) -> dict[str, int]:
    counted = Counter(f.severity for f in findings)
    return {severity: counted[severity] for severity in SEVERITIES if counted[severity]}


def top(findings: list[Finding], limit: int = 10) -> list[Finding]:
    """Most urgent first: severity, then exploit available, then CVSS."""
    return sorted(
        findings,
        key=lambda f: (-f.rank, not f.exploit_available, -(f.cvss or 0.0), f.vulnerability_id),
    )[:limit]
