"""Regressions from review: paths where a quarantine could be undone, bypassed, or an image lose its last tag."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecr_warden.adapters import aws as aws_clients
from ecr_warden.domain.records import ImageStatus
from ecr_warden.policy.load import parse_policy
from ecr_warden_tools import admin
from ecr_warden_tools.local.images import OCI_INDEX, OCI_MANIFEST, image_index, image_manifest
from tests.integration import events
from tests.integration.conftest import REPOSITORY, Env
from tests.integration.test_scan_gate import CRITICAL

DEPLOYMENT = admin.Deployment("dev", "us-east-1")


def _quarantined(aws: Env, tag: str = "v1", immutable: bool = True) -> str:
    aws.create_repository(immutable=immutable)
    digest = aws.push(tag, "bad")
    aws.enhanced.findings[(REPOSITORY, digest)] = list(CRITICAL)
    aws.gate().handle(events.inspector_scan(digest, [tag], {"CRITICAL": 1, "TOTAL": 2}))
    assert aws.tags(digest) == ["quarantined-" + digest[7:19]]
    return digest


def test_a_tag_that_only_looks_like_ours_is_removed(aws: Env) -> None:
    digest = _quarantined(aws)
    aws.push("ecr-warden-prod", "bad")
    aws.push("quarantined-innocent", "bad")
    gate = aws.gate()
    gate.handle(events.push(digest, "ecr-warden-prod"))
    gate.handle(events.push(digest, "quarantined-innocent"))
    assert aws.tags(digest) == ["quarantined-" + digest[7:19]]


def test_a_changed_quarantine_prefix_never_deletes_the_image(aws: Env) -> None:
    digest = _quarantined(aws)
    aws.push("v1-retag", "bad")
    policy = parse_policy(json.dumps({"quarantine_tag_prefix": "blocked-", "rules": [{"name": "r"}]}))
    aws.gate(policy).handle(events.push(digest, "v1-retag"))
    assert aws.tags(digest) == ["quarantined-" + digest[7:19]]  # still there: the recorded tag is ours


def test_pushes_of_restored_tags_do_not_undo_a_release(aws: Env) -> None:
    aws_clients.reset_clients()
    digest = _quarantined(aws, immutable=False)
    admin.release(DEPLOYMENT, REPOSITORY, digest, reason="ok", by="alice")
    assert aws.gate().handle(events.push(digest, "v1")).action == "noop"
    assert aws.tags(digest) == ["v1"]


def test_release_does_not_move_a_tag_that_now_points_elsewhere_in_a_mutable_repo(aws: Env) -> None:
    aws_clients.reset_clients()
    digest = _quarantined(aws, tag="latest", immutable=False)
    fixed = aws.push("latest", "fixed")  # the team shipped a fix under the same tag meanwhile
    outcome = admin.release(DEPLOYMENT, REPOSITORY, digest, reason="accepted", by="bob")
    assert "latest" in outcome.reason
    assert aws.tags(fixed) == ["latest"]
    assert aws.tags(digest) == ["quarantined-" + digest[7:19]]


def _index_with(aws: Env) -> tuple[str, str, str]:
    aws.create_repository()
    amd64 = aws.push(None, "amd64", media_type=OCI_MANIFEST, manifest=image_manifest("amd64", OCI_MANIFEST))
    arm64 = aws.push(None, "arm64", media_type=OCI_MANIFEST, manifest=image_manifest("arm64", OCI_MANIFEST))
    index = aws.push(
        "v2", "index", media_type=OCI_INDEX, manifest=image_index({"linux/amd64": amd64, "linux/arm64": arm64})
    )
    aws.gate().handle(events.push(index, "v2", media_type=OCI_INDEX))
    return index, amd64, arm64


def test_a_released_index_stays_released(aws: Env) -> None:
    aws_clients.reset_clients()
    index, amd64, arm64 = _index_with(aws)
    aws.enhanced.findings[(REPOSITORY, amd64)] = list(CRITICAL)
    aws.enhanced.findings[(REPOSITORY, arm64)] = list(CRITICAL)
    gate = aws.gate()
    gate.handle(events.inspector_scan(amd64, [], {"CRITICAL": 1, "TOTAL": 2}))
    assert aws.tags(index) == ["quarantined-" + index[7:19]]
    admin.release(DEPLOYMENT, REPOSITORY, index, reason="risk accepted", by="carol")
    assert aws.tags(index) == ["v2"]
    # the release's own index push, and the second platform's scan with the same CVEs
    assert gate.handle(events.push(index, "v2", media_type=OCI_INDEX)).action in ("kept_released", "noop")
    gate.handle(events.inspector_scan(arm64, [], {"CRITICAL": 1, "TOTAL": 2}))
    assert aws.tags(index) == ["v2"]


def test_a_child_with_its_own_tag_and_its_index_are_both_blocked(aws: Env) -> None:
    index, amd64, _ = _index_with(aws)
    aws.ecr.put_image(
        repositoryName=REPOSITORY,
        imageManifest=image_manifest("amd64", OCI_MANIFEST),
        imageManifestMediaType=OCI_MANIFEST,
        imageTag="v2-amd64",
    )
    aws.enhanced.findings[(REPOSITORY, amd64)] = list(CRITICAL)
    aws.gate().handle(events.inspector_scan(amd64, ["v2-amd64"], {"CRITICAL": 1, "TOTAL": 2}))
    assert aws.tags(amd64) == ["quarantined-" + amd64[7:19]]
    assert aws.tags(index) == ["quarantined-" + index[7:19]]


class FailOnce:
    """Wraps the registry; the named call fails the first time (as a throttled or timed-out call would)."""

    def __init__(self, inner: Any, method: str) -> None:
        self.inner, self.method, self.failed = inner, method, False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name != self.method:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if not self.failed:
                self.failed = True
                raise RuntimeError(f"{name} failed")
            return attribute(*args, **kwargs)

        return call


def test_a_marker_tag_that_failed_is_completed_by_the_retry(aws: Env) -> None:
    aws.create_repository()
    digest = aws.push("v1", "high")
    aws.enhanced.findings[(REPOSITORY, digest)] = [CRITICAL[1]]  # HIGH
    policy = parse_policy(json.dumps({"rules": [{"name": "r", "tag_at": "HIGH"}]}))
    gate = aws.gate(policy)
    gate.registry = FailOnce(gate.registry, "add_tag")
    event = events.inspector_scan(digest, ["v1"], {"CRITICAL": 0, "HIGH": 1, "TOTAL": 1})
    with pytest.raises(RuntimeError, match="add_tag failed"):
        gate.handle(event)
    assert aws.tags(digest) == ["v1"]
    assert gate.handle(event).action == "tagged"  # Lambda's retry of the same event finishes the job
    assert aws.tags(digest) == ["ecr-warden-flagged-" + digest[7:19], "v1"]


def test_switching_audit_to_enforce_acts_on_the_same_findings(aws: Env) -> None:
    aws.create_repository()
    digest = aws.push("v1", "bad")
    aws.enhanced.findings[(REPOSITORY, digest)] = list(CRITICAL)
    event = events.inspector_scan(digest, ["v1"], {"CRITICAL": 1, "TOTAL": 2})
    assert aws.gate(mode="audit").handle(event).action == "would_quarantine"
    assert aws.gate(mode="enforce").handle(event).action == "quarantined"


def test_a_clean_scan_after_a_failed_scan_is_recorded(aws: Env) -> None:
    aws.create_repository()
    digest = aws.push("v1", "x")
    gate = aws.gate()
    gate.handle(events.basic_scan(digest, ["v1"], {}, status="FAILED"))
    assert gate.handle(events.basic_scan(digest, ["v1"], {"LOW": 1})).action == "passed"
    assert aws.record(digest).status is ImageStatus.PASSED  # type: ignore[union-attr]


class ArchivingRegistry:
    """moto has no UpdateImageStorageClass: record the archive calls, delegate everything else to ECR."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.archived = inner, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def archive(self, repository: str, digest: str) -> None:
        self.archived.append((repository, digest))


def test_archive_method_archives_and_records(aws: Env) -> None:
    aws.create_repository()
    digest = aws.push("v1", "bad")
    aws.enhanced.findings[(REPOSITORY, digest)] = list(CRITICAL)
    gate = aws.gate(parse_policy(json.dumps({"rules": [{"name": "r", "block_method": "archive"}]})))
    registry = ArchivingRegistry(gate.registry)
    gate.registry = registry
    assert gate.handle(events.inspector_scan(digest, ["v1"], {"CRITICAL": 1, "TOTAL": 2})).action == "archived"
    assert registry.archived == [(REPOSITORY, digest)]
    assert aws.tags(digest) == ["v1"]  # archive blocks pulls without touching tags
    assert aws.record(digest).status is ImageStatus.ARCHIVED  # type: ignore[union-attr]


def test_archive_adapter_request_shape() -> None:
    import boto3
    from botocore.stub import Stubber

    from ecr_warden.adapters.registry import EcrRegistry

    ecr = boto3.client("ecr", region_name="us-east-1")
    with Stubber(ecr) as stub:
        stub.add_response(
            "update_image_storage_class",
            {},
            {
                "repositoryName": "r/a",
                "imageId": {"imageDigest": "sha256:" + "a" * 64},
                "targetStorageClass": "ARCHIVE",
            },
        )
        EcrRegistry(ecr).archive("r/a", "sha256:" + "a" * 64)


def test_signature_artifacts_are_never_acted_on(aws: Env) -> None:
    aws.create_repository()
    signature = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.dev.cosign.artifact.sig.v1+json",
                "size": 2,
                "digest": "sha256:" + "4" * 64,
            },
            "layers": [],
        }
    )
    digest = aws.push("sha256-" + "5" * 64 + ".sig", "sig", manifest=signature)
    aws.enhanced.findings[(REPOSITORY, digest)] = list(CRITICAL)
    gate = aws.gate()
    inner = gate.registry

    class ArtifactView:
        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

        def describe(self, repository: str, digest: str) -> Any:
            from dataclasses import replace

            info = inner.describe(repository, digest)
            return replace(info, artifact_media_type="application/vnd.dev.cosign.artifact.sig.v1+json")

    gate.registry = ArtifactView()  # type: ignore[assignment]
    outcome = gate.handle(events.inspector_scan(digest, [], {"CRITICAL": 1, "TOTAL": 2}))
    assert outcome.action == "noop"
    assert aws.tags(digest) == ["sha256-" + "5" * 64 + ".sig"]
