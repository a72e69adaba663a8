"""Amazon ECR: image details, manifests, tags, storage class and basic-scanning findings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecr_warden.adapters.aws import client, error_code
from ecr_warden.contracts.findings import from_basic
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.images import INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, ImageInfo, Manifest, Observed, Scope
from ecr_warden.errors import TagConflictError, WardenError

_GONE = frozenset({"ImageNotFoundException", "RepositoryNotFoundException"})
MAX_PAGE = 1000  # DescribeImages' largest page
MAX_BATCH = 100  # BatchGetImage's limit

# IAM actions this adapter needs; template.yaml grants exactly these to the scan gate (a test compares).
IAM_ACTIONS = frozenset(
    {
        "ecr:DescribeImages",
        "ecr:BatchGetImage",
        "ecr:PutImage",
        "ecr:BatchDeleteImage",
        "ecr:UpdateImageStorageClass",
        "ecr:DescribeImageScanFindings",
    }
)


class RegistryError(WardenError):
    pass


def _info(digest: str, d: dict[str, Any]) -> ImageInfo:
    """ImageInfo from one DescribeImages `imageDetails` item."""
    return ImageInfo(
        digest,
        list(d.get("imageTags") or []),
        d.get("imageManifestMediaType"),
        d.get("artifactMediaType"),
        d.get("imageStatus"),
        (d.get("imageScanStatus") or {}).get("status"),
        (d.get("imageScanStatus") or {}).get("description"),
        d.get("imagePushedAt"),
    )


def image_detail(ecr: Any, repository: str, image_id: dict[str, str]) -> dict[str, Any] | None:
    """DescribeImages for one image (by digest or tag): its details, or None when the image or repository is gone."""
    try:
        details = ecr.describe_images(repositoryName=repository, imageIds=[image_id])
    except Exception as exc:
        if error_code(exc) in _GONE:
            return None
        raise
    images = details.get("imageDetails") or []
    return dict(images[0]) if images else None


@dataclass
class EcrRegistry:
    _client: Any = field(default=None)
    scope: Scope | None = None  # the registry of another account or region (None: this function's own)

    @property
    def ecr(self) -> Any:
        return self._client or client("ecr", self.scope)

    def describe(self, repository: str, digest: str) -> ImageInfo | None:
        detail = image_detail(self.ecr, repository, {"imageDigest": digest})
        return _info(digest, detail) if detail is not None else None

    def manifest(self, repository: str, digest: str) -> Manifest | None:
        try:
            response = self.ecr.batch_get_image(
                repositoryName=repository,
                imageIds=[{"imageDigest": digest}],
                acceptedMediaTypes=MANIFEST_MEDIA_TYPES,
            )
        except Exception as exc:
            if error_code(exc) in _GONE:
                return None
            raise
        images = response.get("images") or []
        if not images:
            return None
        return Manifest(images[0]["imageManifest"], images[0].get("imageManifestMediaType"))

    def add_tag(self, repository: str, digest: str, manifest: Manifest, tag: str) -> None:
        """Tag the digest by putting its exact manifest bytes again; an existing identical tag is success."""
        args: dict[str, Any] = {
            "repositoryName": repository,
            "imageManifest": manifest.body,
            "imageTag": tag,
            "imageDigest": digest,
        }
        if manifest.media_type:
            args["imageManifestMediaType"] = manifest.media_type
        try:
            self.ecr.put_image(**args)
        except Exception as exc:
            code = error_code(exc)
            if code == "ImageAlreadyExistsException":
                # "Image with digest '<d>' and tag '<t>' already exists": success only if <d> is this digest.
                existing = re.search(r"digest '([^']+)'", str(exc))
                if existing and existing.group(1) != digest:
                    raise TagConflictError(f"{repository}:{tag} is on another image") from exc
                return
            if code == "ImageTagAlreadyExistsException":
                raise TagConflictError(f"{repository}:{tag} exists on another image (IMMUTABLE)") from exc
            raise

    def remove_tags(self, repository: str, tags: list[str]) -> list[str]:
        """Remove tag references (the image stays while another tag holds it). Returns failures other than
        'already gone'."""
        failures: list[str] = []
        for start in range(0, len(tags), 100):
            response = self.ecr.batch_delete_image(
                repositoryName=repository, imageIds=[{"imageTag": tag} for tag in tags[start : start + 100]]
            )
            failures.extend(
                f"{f.get('imageId', {}).get('imageTag')}: {f.get('failureCode')}"
                for f in response.get("failures") or []
                if f.get("failureCode") != "ImageNotFound"
            )
        return failures

    def archive(self, repository: str, digest: str) -> None:
        try:
            self.ecr.update_image_storage_class(
                repositoryName=repository, imageId={"imageDigest": digest}, targetStorageClass="ARCHIVE"
            )
        except Exception as exc:
            if error_code(exc) == "ImageStorageClassUpdateNotSupportedException":
                raise RegistryError(f"{repository}@{digest}: archive not supported for this image") from exc
            raise

    def digest_of(self, repository: str, tag: str) -> str | None:
        """The digest a tag points at now, or None."""
        detail = image_detail(self.ecr, repository, {"imageTag": tag})
        return str(detail["imageDigest"]) if detail is not None else None

    def restore(self, repository: str, digest: str) -> None:
        """Back from ARCHIVE to STANDARD (ECR restores asynchronously, about 20 minutes)."""
        self.ecr.update_image_storage_class(
            repositoryName=repository, imageId={"imageDigest": digest}, targetStorageClass="STANDARD"
        )

    def basic_findings(self, repository: str, digest: str) -> list[Finding] | None:
        """All basic-scanning findings of the image (paginated); None when the image or scan is gone."""
        findings: list[Finding] = []
        paginator = self.ecr.get_paginator("describe_image_scan_findings")
        try:
            for page in paginator.paginate(
                repositoryName=repository,
                imageId={"imageDigest": digest},
                PaginationConfig={"PageSize": 1000},
            ):
                findings.extend(from_basic(item) for item in page.get("imageScanFindings", {}).get("findings", []))
        except Exception as exc:
            if error_code(exc) in (*_GONE, "ScanNotFoundException"):
                return None
            raise
        return findings

    def indexes_containing(self, repository: str, digest: str, pushed_since: datetime | None) -> list[Observed]:
        """Tagged image indexes that list this digest, looked for where an index can be: pushed after its
        platform image (`pushed_since`). Bounded whatever the repository's size: one page of its tagged images
        (ECR's largest, 1,000) and one BatchGetImage of at most 100 indexes, the earliest pushed first. An index
        outside that window is found when its push is mapped (and by the sweep), not here. What was read comes
        back with the result, so acting on an index reads nothing twice."""
        page = self.ecr.describe_images(
            repositoryName=repository, filter={"tagStatus": "TAGGED"}, maxResults=MAX_PAGE
        ).get("imageDetails", [])
        candidates = sorted(
            (
                d
                for d in page
                if d.get("imageManifestMediaType") in INDEX_MEDIA_TYPES
                and (pushed_since is None or d.get("imagePushedAt") is None or d["imagePushedAt"] >= pushed_since)
            ),
            key=lambda d: (d.get("imagePushedAt") is None, d.get("imagePushedAt") or 0, d["imageDigest"]),
        )[:MAX_BATCH]
        if not candidates:
            return []
        response = self.ecr.batch_get_image(
            repositoryName=repository,
            acceptedMediaTypes=MANIFEST_MEDIA_TYPES,
            imageIds=[{"imageDigest": d["imageDigest"]} for d in candidates],
        )
        details = {d["imageDigest"]: d for d in candidates}
        found = []
        for image in response.get("images") or []:
            manifest = Manifest(image["imageManifest"], image.get("imageManifestMediaType"))
            index = image["imageId"]["imageDigest"]
            if digest in manifest.platform_children() and index in details:
                found.append(Observed(_info(index, details[index]), manifest))
        return sorted(found, key=lambda o: o.info.digest)
