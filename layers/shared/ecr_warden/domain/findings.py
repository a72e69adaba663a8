"""One finding shape, whichever scanner produced it; the same model travels in records and decision events."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict

from ecr_warden.domain.severity import SEVERITIES, severity_rank


class Finding(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str  # CVE, GHSA or the scanner's own id
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


def count_by_severity(findings: list[Finding]) -> dict[str, int]:
    counted = Counter(f.severity for f in findings)
    return {severity: counted[severity] for severity in SEVERITIES if counted[severity]}


def top(findings: list[Finding], limit: int = 10) -> list[Finding]:
    """Most urgent first: severity, then exploit available, then CVSS."""
    return sorted(
        findings,
        key=lambda f: (-f.rank, not f.exploit_available, -(f.cvss or 0.0), f.id),
    )[:limit]
