"""How the scanners' finding shapes become the one domain Finding: an Inspector finding (ListFindings item or
`Inspector2 Finding` event detail) and an ECR basic-scanning finding."""

from __future__ import annotations

from typing import Any

from ecr_warden.contracts.aws_events import Inspector2FindingDetail
from ecr_warden.domain.findings import Finding


def _yes_no(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.upper() == "YES" if value.upper() in ("YES", "NO") else None


def from_inspector(detail: Inspector2FindingDetail) -> Finding:
    vuln = detail.package_vulnerability_details
    package = vuln.vulnerable_packages[0] if vuln and vuln.vulnerable_packages else None
    cvss = next(
        (score.base_score for score in (vuln.cvss if vuln else []) if score.base_score is not None),
        detail.inspector_score,
    )
    return Finding(
        id=vuln.vulnerability_id if vuln else (detail.title or detail.finding_arn),
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
    """From a DescribeImageScanFindings `findings` item."""
    attributes = {a.get("key"): a.get("value") for a in item.get("attributes") or []}
    score = attributes.get("CVSS3_SCORE") or attributes.get("CVSS2_SCORE")
    try:
        cvss = float(score) if score else None
    except ValueError:
        cvss = None
    return Finding(
        id=str(item.get("name", "unknown")),
        severity=str(item.get("severity", "UNDEFINED")).upper(),
        package=attributes.get("package_name"),
        installed_version=attributes.get("package_version"),
        cvss=cvss,
        url=item.get("uri"),
    )
