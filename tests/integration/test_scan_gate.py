"""The scan gate against moto (ECR, DynamoDB, EventBridge provisioned from template.yaml)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from ecr_warden.contracts.decision import SCHEMA_VERSION
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.records import ImageStatus
from ecr_warden.policy.load import parse_policy
from ecr_warden_tools.local.images import OCI_INDEX, OCI_MANIFEST, image_index, image_manifest
from tests.events import CRITICAL
from tests.integration import events
from tests.integration.conftest import REPOSITORY, Env


def _critical_image(aws: Env, tag: str = "v1.2.3", seed: str = "bad") -> str:
    aws.create_repository()
    digest = aws.push(tag, seed)
    aws.enhanced.findings[(REPOSITORY, digest)] = list(CRITICAL)
    return digest


def test_critical_scan_quarantines_and_keeps_the_image(aws: Env) -> None:
    digest = _critical_image(aws)
    outcome = aws.gate().handle(events.inspector_scan(digest, ["v1.2.3"], {"CRITICAL": 1, "HIGH": 1, "TOTAL": 2}))

    assert outcome.action == "quarantined"
    assert aws.tags(digest) == ["quarantined-" + digest[7:19]]  # digest still present, original tag gone
    record = aws.record(digest)
    assert record is not None
    assert record.status is ImageStatus.QUARANTINED
    assert record.original_tags == ["v1.2.3"]
    assert record.counted_ids == ["CVE-2024-6387"]
    [decision] = aws.decisions()
    assert decision["action"] == "quarantined"
    assert decision["tags"] == ["v1.2.3"]
    assert decision["top_findings"][0]["id"] == "CVE-2024-6387"
    assert decision["schema_version"] == SCHEMA_VERSION


def test_critical_decision_stays_within_eleven_calls(aws: Env) -> None:
    digest = _critical_image(aws)
    aws.counter.calls.clear()
    aws.gate().handle(events.inspector_scan(digest, ["v1.2.3"], {"CRITICAL": 1, "TOTAL": 1}))
    # read record, findings, stored exemptions (a blocking verdict only), describe, manifest, write ahead
    # (announcement owed), put tag, describe again (late tags), delete tags, announce, clear the debt
    assert aws.counter.total + aws.enhanced.calls <= 11, aws.counter.calls


def test_clean_result_takes_two_calls_and_leaves_tags(aws: Env) -> None:
    aws.create_repository()
    digest = aws.push("v1.2.4", "good")
    aws.counter.calls.clear()
    outcome = aws.gate().handle(
        events.inspector_scan(digest, ["v1.2.4"], {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 1, "TOTAL": 1})
    )
    assert outcome.action == "passed"
    assert aws.counter.total == 2, aws.counter.calls
    assert aws.enhanced.calls == 0
    assert aws.tags(digest) == ["v1.2.4"]
    assert aws.record(digest).status is ImageStatus.PASSED  # type: ignore[union-attr]


def test_same_event_twice_acts_once(aws: Env) -> None:
    digest = _critical_image(aws)
    event = events.inspector_scan(digest, ["v1.2.3"], {"CRITICAL": 1, "TOTAL": 2})
    gate = aws.gate()
    gate.handle(event)
    aws.counter.calls.clear()
    second = gate.handle(event)
    assert second.action == "noop"
    assert not {"ecr:PutImage", "ecr:BatchDeleteImage", "events:PutEvents"} & set(aws.counter.calls)
    assert len(aws.decisions()) == 1
    assert len(aws.record(digest).history) == 1  # type: ignore[union-attr]


def test_duplicate_clean_event_announces_once(aws: Env) -> None:
    aws.create_repository()
    digest = aws.push("v1", "clean")
    event = events.basic_scan(digest, ["v1"], {"LOW": 2})
    aws.gate().handle(event)
    assert aws.gate().handle(event).action == "noop"
    assert len(aws.decisions()) == 1


def test_retagging_a_quarantined_digest_does_not_free_it(aws: Env) -> None:
    digest = _critical_image(aws)
    gate = aws.gate()
    gate.handle(events.inspector_scan(digest, ["v1.2.3"], {"CRITICAL": 1, "TOTAL": 2}))
    aws.decisions()
    aws.push("v1.2.3-hotfix", "bad")  # same manifest bytes: same digest, new tag
    outcome = gate.handle(events.push(digest, "v1.2.3-hotfix"))
    assert outcome.action == "retag_blocked"
    assert aws.tags(digest) == ["quarantined-" + digest[7:19]]
    assert aws.record(digest).original_tags == ["v1.2.3", "v1.2.3-hotfix"]  # type: ignore[union-attr]
    assert aws.decisions()[0]["action"] == "retag_blocked"


def test_own_quarantine_push_is_ignored_without_calls(aws: Env) -> None:
    digest = _critical_image(aws)
    aws.counter.calls.clear()
    outcome = aws.gate().handle(events.push(digest, "quarantined-" + digest[7:19]))
    assert outcome.action == "noop"
    assert aws.counter.total == 0


def test_audit_mode_changes_nothing_in_ecr(aws: Env) -> None:
    digest = _critical_image(aws)
    aws.counter.calls.clear()
    outcome = aws.gate(mode="audit").handle(events.inspector_scan(digest, ["v1.2.3"], {"CRITICAL": 1, "TOTAL": 2}))
    assert outcome.action == "would_quarantine"
    assert aws.tags(digest) == ["v1.2.3"]
    assert not {"ecr:PutImage", "ecr:BatchDeleteImage"} & set(aws.counter.calls)
    assert aws.record(digest).status is ImageStatus.AUDITED  # type: ignore[union-attr]
    assert aws.decisions()[0]["action"] == "would_quarantine"


def test_released_image_is_not_reblocked_by_a_late_scan_with_the_same_findings(aws: Env) -> None:
    digest = _critical_image(aws)
    gate = aws.gate()
    event = events.inspector_scan(digest, ["v1.2.3"], {"CRITICAL": 1, "TOTAL": 2})
    gate.handle(event)
    record = aws.record(digest)
    assert record is not None
    # an admin releases it (the remediation function's job; simulated on the record and the registry)
    aws.push("v1.2.3", "bad")
    released = record.model_copy(update={"status": ImageStatus.RELEASED, "released_fingerprint": record.fingerprint})
    gate.store.save(released, record.version)
    late = gate.handle(events.inspector_scan(digest, ["v1.2.3"], {"CRITICAL": 1, "TOTAL": 2}))
    assert late.action == "kept_released"
    assert "v1.2.3" in aws.tags(digest)
    aws.enhanced.findings[(REPOSITORY, digest)].append(Finding(id="CVE-2099-1", severity="CRITICAL"))
    assert gate.handle(events.inspector_scan(digest, ["v1.2.3"], {"CRITICAL": 2, "TOTAL": 3})).action == "quarantined"


def test_quarantine_works_in_a_mutable_repository_too(aws: Env) -> None:
    aws.create_repository(immutable=False)
    digest = aws.push("latest", "bad")
    aws.ecr.put_image(repositoryName=REPOSITORY, imageManifest=image_manifest("bad"), imageTag="v9")
    aws.enhanced.findings[(REPOSITORY, digest)] = list(CRITICAL)
    aws.gate().handle(events.inspector_scan(digest, ["latest", "v9"], None))
    assert aws.tags(digest) == ["quarantined-" + digest[7:19]]
    assert sorted(aws.record(digest).original_tags) == ["latest", "v9"]  # type: ignore[union-attr]


def test_basic_scan_failed_is_recorded_and_reported(aws: Env) -> None:
    aws.create_repository()
    digest = aws.push("v1", "x")
    outcome = aws.gate().handle(events.basic_scan(digest, ["v1"], {}, status="FAILED"))
    assert outcome.action == "scan_failed"
    assert aws.tags(digest) == ["v1"]
    assert aws.decisions()[0]["action"] == "scan_failed"


def test_unscanned_block_policy_quarantines_failed_scans(aws: Env) -> None:
    aws.create_repository()
    digest = aws.push("v1", "x")
    policy = parse_policy(json.dumps({"unscanned": "block", "rules": [{"name": "r"}]}))
    assert aws.gate(policy).handle(events.basic_scan(digest, ["v1"], {}, status="FAILED")).action == "quarantined"


def test_event_for_a_deleted_image_is_skipped_once(aws: Env) -> None:
    aws.create_repository()
    digest = "sha256:" + "e" * 64
    aws.enhanced.findings[(REPOSITORY, digest)] = list(CRITICAL)
    gate = aws.gate()
    first = gate.handle(events.inspector_scan(digest, ["gone"], {"CRITICAL": 1, "TOTAL": 1}))
    assert first.action == "skipped"
    assert aws.record(digest).status is ImageStatus.SKIPPED  # type: ignore[union-attr]


def test_continuous_finding_blocks_an_old_image_and_closing_reports_compliance(aws: Env) -> None:
    aws.create_repository()
    digest = aws.push("v1", "old")
    gate = aws.gate()
    gate.handle(events.inspector_scan(digest, ["v1"], {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "TOTAL": 0}))
    # weeks later Inspector finds a new CVE; ListFindings may not show it yet (eventual consistency)
    assert gate.handle(events.finding(digest, "CVE-2026-0001")).action == "quarantined"
    assert gate.handle(events.finding(digest, "CVE-2026-0001")).action == "noop"
    closed = gate.handle(events.finding(digest, "CVE-2026-0001", status="CLOSED"))
    assert closed.action == "now_compliant"
    assert aws.record(digest).status is ImageStatus.QUARANTINED  # type: ignore[union-attr]
    assert [d["action"] for d in aws.decisions()] == ["passed", "quarantined", "now_compliant"]


def test_auto_release_restores_the_exact_tags(aws: Env) -> None:
    aws.create_repository()
    digest = aws.push("v1", "old")
    aws.ecr.put_image(repositoryName=REPOSITORY, imageManifest=image_manifest("old"), imageTag="stable")
    policy = parse_policy(json.dumps({"auto_release_on_close": True, "rules": [{"name": "r"}]}))
    gate = aws.gate(policy)
    gate.handle(events.finding(digest, "CVE-2026-0001"))
    assert aws.tags(digest) == ["quarantined-" + digest[7:19]]
    assert gate.handle(events.finding(digest, "CVE-2026-0001", status="CLOSED")).action == "released"
    assert aws.tags(digest) == ["stable", "v1"]


def test_below_threshold_finding_costs_no_calls(aws: Env) -> None:
    aws.create_repository()
    digest = aws.push("v1", "x")
    aws.counter.calls.clear()
    assert aws.gate().handle(events.finding(digest, "CVE-1", severity="HIGH")).action == "noop"
    assert aws.counter.total == 0


def test_exempted_cve_does_not_block(aws: Env) -> None:
    digest = _critical_image(aws)
    policy = parse_policy(
        json.dumps(
            {
                "rules": [{"name": "r"}],
                "exemptions": [
                    {
                        "cve": "CVE-2024-6387",
                        "expires": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
                        "reason": "not reachable: sshd disabled in the image",
                        "approver": "security@example.com",
                    }
                ],
            }
        )
    )
    outcome = aws.gate(policy).handle(events.inspector_scan(digest, ["v1.2.3"], {"CRITICAL": 1, "TOTAL": 2}))
    assert outcome.action == "passed"
    assert aws.tags(digest) == ["v1.2.3"]
    assert aws.decisions()[0]["exempted"] == ["CVE-2024-6387"]


def test_multi_arch_child_blocks_the_index_and_attestations_are_ignored(aws: Env) -> None:
    aws.create_repository()
    amd64 = aws.push(None, "amd64", media_type=OCI_MANIFEST, manifest=image_manifest("amd64", OCI_MANIFEST))
    arm64 = aws.push(None, "arm64", media_type=OCI_MANIFEST, manifest=image_manifest("arm64", OCI_MANIFEST))
    index_manifest = image_index({"linux/amd64": amd64, "linux/arm64": arm64})
    index = aws.push("v2.0.0", "index", media_type=OCI_INDEX, manifest=index_manifest)
    gate = aws.gate()
    assert gate.handle(events.push(index, "v2.0.0", media_type=OCI_INDEX)).action == "mapped"
    index_record = aws.record(index)
    assert index_record is not None
    assert index_record.child_digests == [amd64, arm64]  # the attestation manifests are not children
    assert aws.record(arm64).index_digests == [index]  # type: ignore[union-attr]

    aws.enhanced.findings[(REPOSITORY, arm64)] = list(CRITICAL)
    outcome = gate.handle(events.inspector_scan(arm64, [], {"CRITICAL": 1, "TOTAL": 2}))
    assert outcome.action == "quarantined"
    assert aws.tags(index) == ["quarantined-" + index[7:19]]
    assert aws.record(index).original_tags == ["v2.0.0"]  # type: ignore[union-attr]


def test_child_scanned_before_its_index_is_mapped_blocks_the_index_on_arrival(aws: Env) -> None:
    aws.create_repository()
    amd64 = aws.push(None, "amd64", media_type=OCI_MANIFEST, manifest=image_manifest("amd64", OCI_MANIFEST))
    aws.enhanced.findings[(REPOSITORY, amd64)] = list(CRITICAL)
    gate = aws.gate()
    gate.handle(events.inspector_scan(amd64, [], {"CRITICAL": 1, "TOTAL": 2}))  # no index exists yet
    index = aws.push("v3", "index", media_type=OCI_INDEX, manifest=image_index({"linux/amd64": amd64}))
    assert gate.handle(events.push(index, "v3", media_type=OCI_INDEX)).action == "quarantined"
    assert aws.tags(index) == ["quarantined-" + index[7:19]]
