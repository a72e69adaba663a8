"""What ecr-warden knows about an image in ECR: its identity, its details and its manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

INDEX_MEDIA_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
MANIFEST_MEDIA_TYPES = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    *sorted(INDEX_MEDIA_TYPES),
]
# Artifacts about an image (signatures, attestations, SBOMs) by their declared type. The pusher writes that type
# (ECR's artifactMediaType is the manifest's config media type), so it is never trusted alone: a manifest with
# filesystem layers can run, whatever it declares (see Manifest.has_filesystem_layers).
ARTIFACT_MEDIA_TYPES = frozenset(
    {
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "application/vnd.dev.cosign.simplesigning.v1+json",
        "application/vnd.dsse.envelope.v1+json",
        "application/vnd.in-toto+json",
        "application/vnd.cncf.notary.signature",
        "application/spdx+json",
        "application/vnd.cyclonedx+json",
    }
)


@dataclass(frozen=True)
class Scope:
    """Where an image lives: the account and region whose registry holds it."""

    account: str
    region: str

    @property
    def key(self) -> str:
        return f"{self.account}#{self.region}"


@dataclass(frozen=True)
class ImageRef:
    """One image: a digest in a repository."""

    repository: str
    digest: str

    def __str__(self) -> str:
        return f"{self.repository}@{self.digest}"


@dataclass(frozen=True)
class ImageInfo:
    digest: str
    tags: list[str]
    media_type: str | None = None
    artifact_media_type: str | None = None
    status: str | None = None  # ACTIVE | ARCHIVED | ACTIVATING (storage class)
    scan_status: str | None = None  # ECR's imageScanStatus: COMPLETE, FAILED, UNSUPPORTED_IMAGE, ACTIVE, PENDING, …
    scan_status_description: str | None = None
    pushed_at: datetime | None = None

    @property
    def is_artifact(self) -> bool:
        return self.artifact_media_type in ARTIFACT_MEDIA_TYPES

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES


@dataclass(frozen=True)
class Observed:
    """What was read about an image moments ago in the same invocation (saves reading it again)."""

    info: ImageInfo
    manifest: Manifest


@dataclass(frozen=True)
class Manifest:
    body: str
    media_type: str | None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES

    def has_filesystem_layers(self) -> bool:
        """Whether a runtime could unpack this manifest into a container filesystem: any layer that is a tar
        archive (OCI or Docker, compressed or not). Signatures, attestations and SBOMs carry JSON blobs instead.
        An unreadable manifest counts as runnable (fail closed)."""
        try:
            document = json.loads(self.body)
        except ValueError:
            return True
        layers = document.get("layers") if isinstance(document, dict) else None
        if not isinstance(layers, list):
            return True  # e.g. Docker's schema 1 (fsLayers): an image
        return any(_is_filesystem_layer(layer.get("mediaType")) for layer in layers if isinstance(layer, dict))

    def platform_children(self) -> list[str]:
        """Per-platform manifests of an index; attestation and unknown-platform entries are never included."""
        try:
            document = json.loads(self.body)
        except ValueError:
            return []
        children = []
        for entry in document.get("manifests") or []:
            annotations = entry.get("annotations") or {}
            platform = entry.get("platform") or {}
            if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
                continue
            if platform.get("os") == "unknown" or platform.get("architecture") == "unknown":
                continue
            if isinstance(entry.get("digest"), str):
                children.append(entry["digest"])
        return children


def _is_filesystem_layer(media_type: object) -> bool:
    if not isinstance(media_type, str):
        return False
    # application/vnd.oci.image.layer[.nondistributable].v1.tar[+gzip|+zstd],
    # application/vnd.docker.image.rootfs[.foreign].diff.tar.gzip
    return ".image.layer." in media_type or ".image.rootfs." in media_type
