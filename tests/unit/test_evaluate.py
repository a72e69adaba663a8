from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ecr_warden.contracts.common import SeverityCounts
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.images import ImageRef
from ecr_warden.gate.evaluate import Verdict, can_skip_findings_read, evaluate
from ecr_warden.policy.load import default_policy, parse_policy

NOW = datetime(2026, 11, 1, tzinfo=UTC)
DIGEST = "sha256:" + "b" * 64


def finding(cve: str, severity: str, **extra: object) -> Finding:
    return Finding(id=cve, severity=severity, **extra)  # type: ignore[arg-type]


def test_critical_blocks_under_default_policy() -> None:
    decision = evaluate(
        default_policy(),
        ImageRef("ses-base/api", DIGEST),
        ["v1"],
        [finding("CVE-1", "CRITICAL"), finding("CVE-2", "HIGH")],
        NOW,
    )
    assert decision.verdict is Verdict.BLOCK
    assert [f.id for f in decision.counted] == ["CVE-1"]
    assert decision.severity_counts == {"CRITICAL": 1, "HIGH": 1}


def test_high_passes_under_default_policy() -> None:
    decision = evaluate(default_policy(), ImageRef("r/a", DIGEST), [], [finding("CVE-2", "HIGH")], NOW)
    assert decision.verdict is Verdict.PASS


def test_tag_threshold() -> None:
    policy = parse_policy(json.dumps({"rules": [{"name": "r", "block_at": "CRITICAL", "tag_at": "HIGH"}]}))
    assert evaluate(policy, ImageRef("r/a", DIGEST), [], [finding("CVE-2", "HIGH")], NOW).verdict is Verdict.TAG


def test_conditions_must_all_hold() -> None:
    policy = parse_policy(
        json.dumps(
            {
                "rules": [
                    {"name": "r", "conditions": {"fix_available": True, "exploit_available": True, "min_cvss": 9.0}}
                ]
            }
        )
    )
    weak = finding("CVE-1", "CRITICAL", fix_available=True, exploit_available=False, cvss=9.8)
    strong = finding("CVE-2", "CRITICAL", fix_available=True, exploit_available=True, cvss=9.8)
    assert evaluate(policy, ImageRef("r/a", DIGEST), [], [weak], NOW).verdict is Verdict.PASS
    assert evaluate(policy, ImageRef("r/a", DIGEST), [], [weak, strong], NOW).verdict is Verdict.BLOCK


def test_active_exemption_and_expired_exemption() -> None:
    def policy_expiring(at: datetime) -> str:
        return json.dumps(
            {
                "rules": [{"name": "r"}],
                "exemptions": [
                    {"cve": "CVE-1", "expires": at.isoformat(), "reason": "vendor fix pending", "approver": "ciso"}
                ],
            }
        )

    active = parse_policy(policy_expiring(NOW + timedelta(days=1)))
    expired = parse_policy(policy_expiring(NOW - timedelta(seconds=1)))
    findings = [finding("CVE-1", "CRITICAL")]
    decision = evaluate(active, ImageRef("r/a", DIGEST), [], findings, NOW)
    assert decision.verdict is Verdict.PASS
    assert decision.exempted == ["CVE-1"]
    assert evaluate(expired, ImageRef("r/a", DIGEST), [], findings, NOW).verdict is Verdict.BLOCK


def test_fingerprint_depends_on_the_findings_behind_the_verdict() -> None:
    policy = default_policy()
    a = evaluate(policy, ImageRef("r/a", DIGEST), [], [finding("CVE-1", "CRITICAL"), finding("CVE-9", "LOW")], NOW)
    b = evaluate(policy, ImageRef("r/a", DIGEST), [], [finding("CVE-1", "CRITICAL")], NOW)
    c = evaluate(policy, ImageRef("r/a", DIGEST), [], [finding("CVE-1", "CRITICAL"), finding("CVE-3", "CRITICAL")], NOW)
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != c.fingerprint


def test_audit_rule() -> None:
    policy = parse_policy(json.dumps({"rules": [{"name": "r", "audit": True}]}))
    assert evaluate(policy, ImageRef("r/a", DIGEST), [], [finding("CVE-1", "CRITICAL")], NOW).audit


@pytest.mark.parametrize(
    ("counts", "zero_means_absent", "skip"),
    [
        ({"CRITICAL": 0, "HIGH": 3, "TOTAL": 3}, False, True),
        ({"CRITICAL": 1, "HIGH": 3, "TOTAL": 4}, False, False),
        ({"HIGH": 3}, False, False),  # Inspector: CRITICAL missing is unknown
        ({"HIGH": 3}, True, True),  # ECR basic: zero severities are omitted by design
        (None, True, False),  # no counts at all: read the findings
    ],
)
def test_can_skip_findings_read(counts: dict[str, int] | None, zero_means_absent: bool, skip: bool) -> None:
    parsed = SeverityCounts.model_validate(counts) if counts is not None else None
    assert can_skip_findings_read(default_policy(), "r/a", parsed, zero_means_absent) is skip
