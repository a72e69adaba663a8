"""The decision itself: pure, no I/O. Given the policy and an image's findings, what should happen?"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from ecr_warden.contracts.common import SeverityCounts
from ecr_warden.domain.findings import Finding, count_by_severity, top
from ecr_warden.domain.images import ImageRef
from ecr_warden.domain.severity import SEVERITY_RANK, severity_rank
from ecr_warden.policy.model import Exemption, Policy, Rule


class Verdict(StrEnum):
    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    TAG = "TAG"
    BLOCK = "BLOCK"


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    rule: str | None
    block_method: str
    audit: bool
    reasons: list[str]
    severity_counts: dict[str, int]
    counted: list[Finding]  # the findings behind the verdict, most urgent first
    exempted: list[str]
    findings_total: int
    note: str = ""  # sets apart decisions with the same findings but another cause (e.g. a failed scan)
    pinned_fingerprint: str | None = None  # a decision rebuilt from a stored record keeps its identity

    @property
    def fingerprint(self) -> str:
        """Identity of the decision input: verdict, mode and the findings that caused it. Switching audit to
        enforce is a new decision, so it acts."""
        if self.pinned_fingerprint:
            return self.pinned_fingerprint
        mode = "audit" if self.audit else "enforce"
        findings = ",".join(sorted(f"{f.id}:{f.severity}" for f in self.counted))
        basis = f"{self.verdict}|{mode}|{self.note}|{findings}"
        return hashlib.sha256(basis.encode()).hexdigest()[:32]


def _counts(finding: Finding, rule: Rule) -> bool:
    conditions = rule.conditions
    if conditions.fix_available is not None and finding.fix_available is not conditions.fix_available:
        return False
    if conditions.exploit_available is not None and finding.exploit_available is not conditions.exploit_available:
        return False
    return conditions.min_cvss is None or (finding.cvss is not None and finding.cvss >= conditions.min_cvss)


def evaluate(  # noqa: PLR0913 - the stored exemptions come with the policy's inputs
    policy: Policy,
    image: ImageRef,
    tags: list[str],
    findings: list[Finding],
    now: datetime,
    audit_mode: bool = False,
    exemptions: Sequence[Exemption] = (),
) -> Decision:
    """`exemptions`: those in ecr-warden's own store for this repository (the admin function adds them); they
    apply together with the policy's own."""
    repository, digest = image.repository, image.digest
    rule = policy.rule_for(repository)
    counts = count_by_severity(findings)
    if rule is None:
        return Decision(
            verdict=Verdict.PASS,
            rule=None,
            block_method="quarantine",
            audit=audit_mode,
            reasons=["no policy rule covers this repository"],
            severity_counts=counts,
            counted=[],
            exempted=[],
            findings_total=len(findings),
        )
    exempted: dict[str, Exemption] = {}
    relevant: list[Finding] = []
    candidates = [*policy.exemptions, *exemptions]
    for finding in findings:
        exemption = next((e for e in candidates if e.applies(finding.id, repository, digest, tags, now)), None)
        if exemption is not None:
            exempted.setdefault(finding.id, exemption)
        elif _counts(finding, rule):
            relevant.append(finding)

    def at_least(threshold: str | None) -> list[Finding]:
        if threshold is None:
            return []
        return [f for f in relevant if f.rank >= severity_rank(threshold)]

    verdict, counted = Verdict.PASS, []
    if blocking := at_least(rule.block_at):
        verdict, counted = Verdict.BLOCK, blocking
    elif tagging := at_least(rule.tag_at):
        verdict, counted = Verdict.TAG, tagging
    counted = top(counted, limit=len(counted))
    reasons = [_reason(verdict, rule, counted)]
    if exempted:
        reasons.append("exempted: " + "; ".join(_exempted(cve, exempted[cve]) for cve in sorted(exempted)))
    return Decision(
        verdict=verdict,
        rule=rule.name,
        block_method=rule.block_method,
        audit=audit_mode or rule.audit,
        reasons=reasons,
        severity_counts=counts,
        counted=counted,
        exempted=sorted(exempted),
        findings_total=len(findings),
    )


def _exempted(cve: str, exemption: Exemption) -> str:
    return f"{cve} until {exemption.expires:%Y-%m-%d}, approved by {exemption.approver}"


def _reason(verdict: Verdict, rule: Rule, counted: list[Finding]) -> str:
    if verdict is Verdict.PASS:
        return f"rule {rule.name}: nothing at or above the policy thresholds"
    threshold = rule.block_at if verdict is Verdict.BLOCK else rule.tag_at
    ids = ", ".join(f.id for f in counted[:5]) + (" …" if len(counted) > 5 else "")
    return f"rule {rule.name}: {len(counted)} finding(s) at or above {threshold}: {ids}"


def can_skip_findings_read(
    policy: Policy, repository: str, counts: SeverityCounts | None, zero_means_absent: bool
) -> bool:
    """True when the event's counts prove nothing can reach a threshold, so the findings need not be read.

    ECR basic scanning omits zero severities by design (zero_means_absent). For Inspector a missing severity is
    unknown, never zero: every severity at or above the lowest threshold must be reported, and be 0.
    """
    rule = policy.rule_for(repository)
    if rule is None:
        return True
    thresholds = [severity_rank(t) for t in (rule.block_at, rule.tag_at) if t is not None]
    if not thresholds:
        return True
    if counts is None:
        return False
    lowest = min(thresholds)
    reported = counts.as_dict()
    for severity in SEVERITY_RANK:
        if severity_rank(severity) < lowest:
            continue
        count = reported.get(severity, 0 if zero_means_absent else None)
        if count is None or count > 0:
            return False
    return True
