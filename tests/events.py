"""Sample events (from events/) re-aimed at the images a test made: one builder per event type, shared by the
unit tests on in-memory fakes and the integration tests on moto."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from ecr_warden.contracts.aws_events import AwsEvent
from ecr_warden.contracts.parsing import parse_aws_event
from ecr_warden.domain.findings import Finding
from tests.conftest import load_event

ACCOUNT = "123456789012"
REPOSITORY = "ses-base/api-server"
CRITICAL = [
    Finding(
        id="CVE-2024-6387",
        severity="CRITICAL",
        package="openssh-server",
        fixed_version="1:8.9p1-3ubuntu0.10",
        cvss=9.8,
        exploit_available=True,
    ),
    Finding(id="CVE-2023-44487", severity="HIGH"),
]


def _fresh(name: str) -> dict[str, Any]:
    raw = copy.deepcopy(load_event(name))
    raw["id"] = str(uuid.uuid4())
    return raw


def inspector_scan(
    digest: str, tags: list[str], counts: dict[str, int] | None, repository: str = REPOSITORY, status: str = ""
) -> AwsEvent:
    raw = _fresh("inspector2-scan-critical.json")
    raw["detail"].update(
        {
            "repository-name": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{repository}",
            "image-digest": digest,
            "image-tags": tags,
        }
    )
    if status:
        raw["detail"]["scan-status"] = status
    if counts is None:
        raw["detail"].pop("finding-severity-counts", None)
    else:
        raw["detail"]["finding-severity-counts"] = counts
    return parse_aws_event(raw)


def basic_scan(digest: str, tags: list[str], counts: dict[str, int], status: str = "COMPLETE") -> AwsEvent:
    raw = _fresh("ecr-image-scan-complete.json")
    raw["detail"].update(
        {
            "repository-name": REPOSITORY,
            "image-digest": digest,
            "image-tags": tags,
            "finding-severity-counts": counts,
            "scan-status": status,
        }
    )
    return parse_aws_event(raw)


def push(
    digest: str, tag: str | None, media_type: str | None = None, artifact_media_type: str | None = None
) -> AwsEvent:
    raw = _fresh("ecr-image-action-push.json")
    raw["detail"].update({"repository-name": REPOSITORY, "image-digest": digest})
    raw["detail"].pop("image-tag", None)
    if tag:
        raw["detail"]["image-tag"] = tag
    if media_type:
        raw["detail"]["manifest-media-type"] = media_type
    if artifact_media_type:
        raw["detail"]["artifact-media-type"] = artifact_media_type
    return parse_aws_event(raw)


def finding(digest: str, cve: str, severity: str = "CRITICAL", status: str = "ACTIVE") -> AwsEvent:
    raw = _fresh("inspector2-finding-critical-active.json")
    detail = raw["detail"]
    detail.update({"severity": severity, "status": status})
    detail["packageVulnerabilityDetails"]["vulnerabilityId"] = cve
    image = detail["resources"][0]["details"]["awsEcrContainerImage"]
    image.update({"repositoryName": REPOSITORY, "imageHash": digest})
    return parse_aws_event(raw)
