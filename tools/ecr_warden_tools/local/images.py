"""Synthetic image manifests for pushing to the local stack without Docker (the registry only sees JSON).

To push one to a running `ecr-warden local`: `ecr-warden push --repository R --tag T` (the same `--seed` gives the
same digest, to put another tag on an image), or `aws ecr put-image --image-manifest file://M` with a manifest from
`image_manifest(seed)`. Either way the stack emits `ECR Image Action` PUSH as ECR does; `ecr-warden scan` then plays
the scanner.
"""

from __future__ import annotations

import hashlib
import json

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def image_manifest(seed: str, media_type: str = DOCKER_MANIFEST) -> str:
    """A valid-looking single-platform manifest; a different seed gives a different digest."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 7023,
                "digest": _digest(f"config-{seed}"),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 32654,
                    "digest": _digest(f"layer-{seed}"),
                }
            ],
        },
        indent=3,
    )


def manifest_digest(manifest: str) -> str:
    return "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()


def image_index(children: dict[str, str], with_attestations: bool = True) -> str:
    """An OCI index over per-platform manifests ({"linux/amd64": digest}), with buildx-style attestations."""
    manifests = []
    for platform, digest in children.items():
        os_name, arch = platform.split("/", 1)
        manifests.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": 1234,
                "platform": {"architecture": arch, "os": os_name},
            }
        )
    if with_attestations:
        for digest in children.values():
            manifests.append(
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": _digest(f"attestation-{digest}"),
                    "size": 566,
                    "annotations": {
                        "vnd.docker.reference.digest": digest,
                        "vnd.docker.reference.type": "attestation-manifest",
                    },
                    "platform": {"architecture": "unknown", "os": "unknown"},
                }
            )
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}, indent=3)
