"""In-memory fakes of the scan gate's four ports (ecr_warden.gate.ports), for tests without moto or a network.

Each fake keeps the semantics of its real adapter, because a fake that is kinder than AWS hides bugs:

- FakeRegistry is ECR as EcrRegistry sees it: PutImage of an existing tag on another image fails in an IMMUTABLE
  repository (TagConflictError, as the adapter translates it) and moves the tag in a MUTABLE one (the old image
  stays, untagged if that was its last tag); BatchDeleteImage by tag deletes the image with its last tag, reports
  per-tag failures (the adapter drops only `ImageNotFound`), and refuses to delete an image an index references.
- FakeAuditStore is DynamoAuditStore: items stored as their JSON form, `save` with the same optimistic-concurrency
  condition (ConcurrentUpdateError), `record_pass` with the same conditional upsert (same attributes set, same
  return value), `link_child` with the same condition.
- FakeFindings is Inspector's ListFindings (ACTIVE findings of one image); FakeAnnouncer collects DecisionDetail.

Every port method counts its calls (`fake.calls["add_tag"]`; for the tests' small inputs each port call is one AWS
call of the real adapter, except `indexes_containing`, which lists and then reads), can be made to fail
(`fake.fail("remove_tags")`) or run a hook first (`fake.before("add_tag", ...)`, e.g. a concurrent change).
Test-side helpers (`tags`, `record`, `actions`, ...) never count as calls.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ecr_warden.adapters.decision_bus import AnnounceError
from ecr_warden.contracts.checks import FindingsCheck, UnscannedCheck
from ecr_warden.contracts.decision import DecisionDetail
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.images import INDEX_MEDIA_TYPES, ImageInfo, Manifest, Observed, Scope
from ecr_warden.domain.records import HistoryEntry, ImageRecord, ImageStatus
from ecr_warden.errors import ConcurrentUpdateError, TagConflictError
from ecr_warden.gate.context import GateContext
from ecr_warden.gate.dispatch import ScanGate
from ecr_warden.gate.ports import Ports
from ecr_warden.policy.load import default_policy
from ecr_warden.policy.model import Policy
from tests.events import ACCOUNT, REPOSITORY

REGION = "us-east-1"
SCOPE = Scope(ACCOUNT, REGION)
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE_CONFIG = "application/vnd.docker.container.image.v1+json"
COSIGN_SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"
# DynamoAuditStore.record_pass: a clean result is written without a read only from these statuses.
QUIET_STATUSES = frozenset(
    {ImageStatus.PASSED, ImageStatus.PENDING, ImageStatus.SKIPPED, ImageStatus.SCAN_FAILED, ImageStatus.UNSCANNED}
)  # fmt: skip


class FakeAwsError(Exception):
    """An AWS error the real adapter does not translate (it propagates as botocore's ClientError would)."""

    def __init__(self, code: str, message: str = "") -> None:
        self.code = code
        super().__init__(f"{code}: {message}" if message else code)


def digest_of_manifest(body: str) -> str:
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
COSIGN_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"


def image_manifest(
    seed: str, media_type: str = DOCKER_MANIFEST, config_media_type: str = IMAGE_CONFIG, layer: str = DOCKER_LAYER
) -> str:
    """A single-platform manifest; a different seed gives a different digest."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_media_type, "size": 7023, "digest": _sha(f"config-{seed}")},
            "layers": [{"mediaType": layer, "size": 1, "digest": _sha(seed)}],
        }
    )


def signature_manifest(seed: str) -> str:
    """A cosign signature: declares the artifact type and carries a JSON payload, no filesystem."""
    return image_manifest(seed, OCI_MANIFEST, COSIGN_SIGNATURE, COSIGN_LAYER)


def image_index(children: dict[str, str], with_attestations: bool = True) -> str:
    """An OCI index over per-platform manifests ({"linux/amd64": digest}), with buildx-style attestations."""
    manifests: list[dict[str, Any]] = []
    for platform, digest in children.items():
        os_name, arch = platform.split("/", 1)
        manifests.append(
            {"mediaType": OCI_MANIFEST, "digest": digest, "size": 1, "platform": {"architecture": arch, "os": os_name}}
        )
    if with_attestations:
        manifests.extend(
            {
                "mediaType": OCI_MANIFEST,
                "digest": _sha(f"attestation-{digest}"),
                "size": 1,
                "annotations": {
                    "vnd.docker.reference.digest": digest,
                    "vnd.docker.reference.type": "attestation-manifest",
                },
                "platform": {"architecture": "unknown", "os": "unknown"},
            }
            for digest in children.values()
        )
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})


def _sha(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def _json_time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# -- call counting and fault injection ----------------------------------------------------------------------------


class _Port:
    """Call counter, injected failures and hooks, shared by every fake."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._faults: dict[str, list[BaseException]] = {}
        self._hooks: dict[str, list[Callable[[], None]]] = {}

    def fail(self, method: str, error: BaseException | None = None, times: int = 1) -> None:
        """The next `times` calls of `method` raise `error` (default: a throttling error) before doing anything."""
        if not callable(getattr(self, method, None)):
            raise AttributeError(f"{type(self).__name__} has no method {method!r}")
        fault = error or FakeAwsError("ThrottlingException", f"{method} failed (injected)")
        self._faults.setdefault(method, []).extend([fault] * times)

    def before(self, method: str, hook: Callable[[], None]) -> None:
        """Run `hook` once, just before the next call of `method` does its work (a concurrent change)."""
        self._hooks.setdefault(method, []).append(hook)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def _enter(self, method: str) -> None:
        self.calls[method] += 1
        hooks = self._hooks.pop(method, [])
        for hook in hooks:
            hook()
        faults = self._faults.get(method)
        if faults:
            raise faults.pop(0)


# -- ECR -----------------------------------------------------------------------------------------------------------


@dataclass
class FakeImage:
    digest: str
    body: str
    media_type: str | None
    artifact_media_type: str | None
    status: str = "ACTIVE"  # ACTIVE | ARCHIVED | ACTIVATING (storage class)

    @property
    def manifest(self) -> Manifest:
        return Manifest(self.body, self.media_type)


@dataclass
class FakeRepository:
    name: str
    immutable: bool
    images: dict[str, FakeImage] = field(default_factory=dict)  # by digest, in push order
    tag_index: dict[str, str] = field(default_factory=dict)  # tag -> digest, in tagging order
    scans: dict[str, list[Finding]] = field(default_factory=dict)  # basic-scanning findings by digest

    def tags_of(self, digest: str) -> list[str]:
        return [tag for tag, target in self.tag_index.items() if target == digest]

    def referenced_by_index(self, digest: str) -> bool:
        """ECR will not delete an image that an index in the repository lists (any entry, attestations too)."""
        for image in self.images.values():
            if image.media_type in INDEX_MEDIA_TYPES and image.digest != digest:
                try:
                    entries = json.loads(image.body).get("manifests") or []
                except ValueError:
                    continue
                if any(entry.get("digest") == digest for entry in entries):
                    return True
        return False


class FakeRegistry(_Port):
    """ECR for EcrRegistry's port, by (repository, digest). Port methods mirror the adapter; the rest is set-up."""

    WRITES = ("add_tag", "remove_tags", "archive", "restore")

    def __init__(self) -> None:
        super().__init__()
        self.repositories: dict[str, FakeRepository] = {}
        self._tag_failures: dict[str, list[str]] = {}

    # -- set-up (like a user of ECR; never counted) --------------------------------------------------------------

    def create_repository(self, name: str = REPOSITORY, immutable: bool = True) -> FakeRepository:
        if name in self.repositories:
            raise FakeAwsError("RepositoryAlreadyExistsException", name)
        self.repositories[name] = FakeRepository(name, immutable)
        return self.repositories[name]

    def delete_repository(self, name: str = REPOSITORY) -> None:
        del self.repositories[name]

    def push(
        self,
        tag: str | None,
        seed: str = "image",
        repository: str = REPOSITORY,
        manifest: str | None = None,
        media_type: str | None = None,
    ) -> str:
        """`docker push` (PutImage): returns the digest. Same manifest bytes, same digest: a new tag on it."""
        body = manifest if manifest is not None else image_manifest(seed)
        return self._put_image(self._repository(repository), body, media_type, tag)

    def push_index(self, tag: str | None, children: dict[str, str], repository: str = REPOSITORY) -> str:
        return self.push(tag, repository=repository, manifest=image_index(children), media_type=OCI_INDEX)

    def push_platform(self, seed: str, repository: str = REPOSITORY, tag: str | None = None) -> str:
        """A per-platform image of a multi-arch build (pushed untagged by buildx)."""
        return self.push(tag, repository=repository, manifest=image_manifest(seed, OCI_MANIFEST))

    def delete_image(self, digest: str, repository: str = REPOSITORY) -> None:
        """BatchDeleteImage by digest: the image and all its tags are gone."""
        repo = self._repository(repository)
        repo.images.pop(digest)
        repo.scans.pop(digest, None)
        for tag in repo.tags_of(digest):
            del repo.tag_index[tag]

    def set_scan(self, digest: str, findings: list[Finding], repository: str = REPOSITORY) -> None:
        """The basic-scanning result of an image (DescribeImageScanFindings)."""
        self._repository(repository).scans[digest] = list(findings)

    def fail_tag_removal(self, tag: str, code: str = "KmsError", times: int = 1) -> None:
        """BatchDeleteImage reports `code` for this tag (a per-item failure, not an exception)."""
        self._tag_failures.setdefault(tag, []).extend([code] * times)

    def settle_restores(self) -> None:
        """ECR finished restoring archived images (about 20 minutes after the request)."""
        for repo in self.repositories.values():
            for image in repo.images.values():
                if image.status == "ACTIVATING":
                    image.status = "ACTIVE"

    # -- assertions (never counted) ------------------------------------------------------------------------------

    def tags(self, digest: str, repository: str = REPOSITORY) -> list[str]:
        """The image's tags, sorted; AssertionError when the image does not exist."""
        repo = self._repository(repository)
        assert digest in repo.images, f"{repository}@{digest} does not exist"
        return sorted(repo.tags_of(digest))

    def exists(self, digest: str, repository: str = REPOSITORY) -> bool:
        repo = self.repositories.get(repository)
        return repo is not None and digest in repo.images

    def image(self, digest: str, repository: str = REPOSITORY) -> FakeImage:
        return self._repository(repository).images[digest]

    def status(self, digest: str, repository: str = REPOSITORY) -> str:
        return self.image(digest, repository).status

    def tagged(self, tag: str, repository: str = REPOSITORY) -> str | None:
        return self._repository(repository).tag_index.get(tag)

    @property
    def writes(self) -> int:
        """Calls that change ECR."""
        return sum(self.calls[method] for method in self.WRITES)

    # -- the port ------------------------------------------------------------------------------------------------

    def describe(self, repository: str, digest: str) -> ImageInfo | None:
        self._enter("describe")
        repo = self.repositories.get(repository)
        image = repo.images.get(digest) if repo else None
        if repo is None or image is None:
            return None
        return ImageInfo(digest, repo.tags_of(digest), image.media_type, image.artifact_media_type, image.status)

    def manifest(self, repository: str, digest: str) -> Manifest | None:
        self._enter("manifest")
        repo = self.repositories.get(repository)
        image = repo.images.get(digest) if repo else None
        return image.manifest if image else None

    def add_tag(self, repository: str, digest: str, manifest: Manifest, tag: str) -> None:
        """PutImage of the exact manifest with imageDigest: translated like EcrRegistry.add_tag."""
        self._enter("add_tag")
        repo = self._repository(repository)
        if digest_of_manifest(manifest.body) != digest:
            raise FakeAwsError("ImageDigestDoesNotMatchException", f"{digest} is not the digest of the manifest")
        try:
            self._put_image(repo, manifest.body, manifest.media_type, tag)
        except FakeAwsError as exc:
            if exc.code == "ImageAlreadyExistsException":
                return  # the tag is on this digest already: success
            if exc.code == "ImageTagAlreadyExistsException":
                raise TagConflictError(f"{repository}:{tag} exists on another image (IMMUTABLE)") from exc
            raise

    def remove_tags(self, repository: str, tags: list[str]) -> list[str]:
        """BatchDeleteImage by tag: failures other than ImageNotFound, formatted like EcrRegistry.remove_tags."""
        self._enter("remove_tags")
        repo = self._repository(repository)
        failures: list[str] = []
        for tag in tags:
            injected = self._tag_failures.get(tag)
            if injected:
                failures.append(f"{tag}: {injected.pop(0)}")
                continue
            digest = repo.tag_index.get(tag)
            if digest is None:
                continue  # ImageNotFound: already gone, not a failure
            if repo.tags_of(digest) == [tag]:  # the last tag: the image goes with it
                if repo.referenced_by_index(digest):
                    failures.append(f"{tag}: ImageReferencedByManifestList")
                    continue
                del repo.tag_index[tag]
                del repo.images[digest]
                repo.scans.pop(digest, None)
            else:
                del repo.tag_index[tag]
        return failures

    def archive(self, repository: str, digest: str) -> None:
        self._enter("archive")
        self._image(repository, digest).status = "ARCHIVED"

    def restore(self, repository: str, digest: str) -> None:
        self._enter("restore")
        image = self._image(repository, digest)
        if image.status != "ARCHIVED":
            raise FakeAwsError("InvalidParameterException", f"{repository}@{digest} is {image.status}, not ARCHIVED")
        image.status = "ACTIVATING"

    def digest_of(self, repository: str, tag: str) -> str | None:
        self._enter("digest_of")
        repo = self.repositories.get(repository)
        return repo.tag_index.get(tag) if repo else None

    def basic_findings(self, repository: str, digest: str) -> list[Finding] | None:
        self._enter("basic_findings")
        repo = self.repositories.get(repository)
        if repo is None or digest not in repo.images or digest not in repo.scans:
            return None  # RepositoryNotFound, ImageNotFound or ScanNotFound
        return list(repo.scans[digest])

    def indexes_containing(self, repository: str, digest: str, pushed_since: datetime | None) -> list[Observed]:
        self._enter("indexes_containing")
        repo = self._repository(repository)
        found = sorted(
            image.digest
            for image in repo.images.values()
            if image.media_type in INDEX_MEDIA_TYPES
            and repo.tags_of(image.digest)  # DescribeImages filter tagStatus=TAGGED
            and digest in image.manifest.platform_children()
        )
        return [
            Observed(ImageInfo(index, repo.tags_of(index), repo.images[index].media_type), repo.images[index].manifest)
            for index in found
        ]

    # -- ECR's rules ---------------------------------------------------------------------------------------------

    def _repository(self, name: str) -> FakeRepository:
        repo = self.repositories.get(name)
        if repo is None:
            raise FakeAwsError("RepositoryNotFoundException", name)
        return repo

    def _image(self, repository: str, digest: str) -> FakeImage:
        image = self._repository(repository).images.get(digest)
        if image is None:
            raise FakeAwsError("ImageNotFoundException", f"{repository}@{digest}")
        return image

    @staticmethod
    def _put_image(repo: FakeRepository, body: str, media_type: str | None, tag: str | None) -> str:
        """PutImage. A known manifest is accepted again (ECR keeps its layers), so a deleted image comes back."""
        digest = digest_of_manifest(body)
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise FakeAwsError("InvalidParameterException", "manifest is not JSON") from exc
        media_type = media_type or document.get("mediaType")
        holder = repo.tag_index.get(tag) if tag else None
        if digest in repo.images and (tag is None or holder == digest):
            raise FakeAwsError(
                "ImageAlreadyExistsException", f"Image with digest '{digest}' and tag '{tag}' already exists"
            )
        if holder is not None and holder != digest and repo.immutable:
            raise FakeAwsError("ImageTagAlreadyExistsException", f"tag '{tag}' is on {holder} (IMMUTABLE)")
        if digest not in repo.images:
            config = document.get("config") if isinstance(document.get("config"), dict) else {}
            artifact = None if media_type in INDEX_MEDIA_TYPES else (config or {}).get("mediaType")
            repo.images[digest] = FakeImage(digest, body, media_type, artifact)
        if tag:
            repo.tag_index.pop(tag, None)  # MUTABLE: the tag moves; the old image stays (untagged if it was its last)
            repo.tag_index[tag] = digest
        return digest


# -- Inspector -------------------------------------------------------------------------------------------------------


class FakeFindings(_Port):
    """Inspector's ACTIVE findings of an image (ListFindings filtered by repository and hash)."""

    def __init__(self) -> None:
        super().__init__()
        self.findings: dict[tuple[str, str], list[Finding]] = {}
        self.covered: dict[tuple[str, str], tuple[str, str | None] | None] = {}

    def set(self, digest: str, findings: list[Finding], repository: str = REPOSITORY) -> None:
        self.findings[(repository, digest)] = list(findings)

    def close(self, digest: str, finding_id: str, repository: str = REPOSITORY) -> None:
        key = (repository, digest)
        self.findings[key] = [f for f in self.findings.get(key, []) if f.id != finding_id]

    def active_findings(self, repository: str, digest: str) -> list[Finding]:
        self._enter("active_findings")
        return list(self.findings.get((repository, digest), []))

    def coverage(self, repository: str, digest: str, repository_arn: str) -> tuple[str, str | None] | None:
        """ListCoverage for one image: what `covered` says, else ACTIVE/SUCCESSFUL once it has findings."""
        self._enter("coverage")
        if (repository, digest) in self.covered:
            return self.covered[(repository, digest)]
        return ("ACTIVE", "SUCCESSFUL") if (repository, digest) in self.findings else None


# -- DynamoDB --------------------------------------------------------------------------------------------------------


class FakeAuditStore(_Port):
    """The audit table of DynamoAuditStore: one JSON item per (repository, digest) of one scope."""

    def __init__(self, scope: Scope = SCOPE) -> None:
        super().__init__()
        self.scope = scope
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.claims: dict[tuple[str, str], dict[str, str]] = {}  # (repository, tag) -> holder, reused_by

    # -- set-up and assertions (never counted) -------------------------------------------------------------------

    def record(self, digest: str, repository: str = REPOSITORY) -> ImageRecord | None:
        item = self.items.get((repository, digest))
        return ImageRecord.model_validate(item) if item else None

    def require(self, digest: str, repository: str = REPOSITORY) -> ImageRecord:
        record = self.record(digest, repository)
        assert record is not None, f"no record of {repository}@{digest}"
        return record

    def put(self, record: ImageRecord) -> ImageRecord:
        """Seed an item as it is (its own version), bypassing every condition."""
        self.items[(record.repository, record.digest)] = self._item(record)
        return record

    def history(self, digest: str, repository: str = REPOSITORY) -> list[str]:
        """The actions of the record's history, oldest first."""
        record = self.record(digest, repository)
        return [entry.action for entry in record.history] if record else []

    def interfere(self, digest: str, repository: str = REPOSITORY) -> None:
        """Another writer updates the item (its version moves on) behind the reader's back."""
        item = self.items[(repository, digest)]
        item["version"] = int(item.get("version", 0)) + 1

    # -- the port ------------------------------------------------------------------------------------------------

    def get(self, repository: str, digest: str) -> ImageRecord | None:
        self._enter("get")
        return self.record(digest, repository)

    def save(self, record: ImageRecord, expected_version: int, claims: Sequence[str] = ()) -> ImageRecord:
        """attribute_not_exists(pk) when expected_version is 0, else version = :expected; the tag claims are
        written in the same transaction (all or nothing)."""
        self._enter("save")
        updated = record.model_copy(
            update={"version": expected_version + 1, "account": self.scope.account, "region": self.scope.region}
        )
        current = self.items.get((record.repository, record.digest))
        if expected_version == 0:
            holds = current is None
        else:
            holds = current is not None and current.get("version") == expected_version
        if not holds:
            raise ConcurrentUpdateError(f"{record.repository}@{record.digest} changed concurrently")
        self.items[(record.repository, record.digest)] = self._item(updated)
        for tag in claims:  # a new claim replaces the old one, reused_by included
            self.claims[(record.repository, tag)] = {"holder": record.digest}
        return updated

    def tag_reuse_news(self, repository: str, tag: str, digest: str) -> str | None:
        """The consistent read of DynamoAuditStore.tag_reuse_news."""
        self._enter("tag_reuse_news")
        claim = self.claims.get((repository, tag))
        if claim is None or digest in (claim["holder"], claim.get("reused_by")):
            return None
        return str(claim["holder"])

    def confirm_tag_reuse(self, repository: str, tag: str, holder: str, digest: str) -> None:
        """The conditional update of DynamoAuditStore.confirm_tag_reuse."""
        self._enter("confirm_tag_reuse")
        claim = self.claims.get((repository, tag))
        if claim is not None and claim["holder"] == holder:
            claim["reused_by"] = digest

    def record_pass(self, record: ImageRecord, entry: HistoryEntry) -> str | None:
        """The conditional upsert of DynamoAuditStore.record_pass: the same condition, attributes and result."""
        self._enter("record_pass")
        key = (record.repository, record.digest)
        current = self.items.get(key)
        scanned = _json_time(record.scanned_at) if record.scanned_at else None
        if current is not None and not (
            current.get("status") in QUIET_STATUSES
            and ("fingerprint" not in current or current["fingerprint"] != record.fingerprint)
            and "awaiting_findings" not in current
            and (scanned is None or "scanned_at" not in current or current["scanned_at"] <= scanned)
        ):
            return None  # ConditionalCheckFailedException
        item: dict[str, Any] = dict(current) if current is not None else {"digest": record.digest}
        item.update(
            {
                "repository": record.repository,
                "account": self.scope.account,
                "region": self.scope.region,
                "status": ImageStatus.PASSED.value,
                "verdict": "PASS",
                "fingerprint": record.fingerprint,
                "severity_counts": dict(record.severity_counts),
                "updated_at": _json_time(record.updated_at),
                "original_tags": list(record.original_tags),
                "top_findings": [],
                "findings_total": 0,
                "history": [*item.get("history", []), entry.model_dump(mode="json", exclude_none=True)],
                "version": int(item.get("version", 0)) + 1,
            }
        )
        if record.rule:
            item["rule"] = record.rule
        if scanned:
            item["scanned_at"] = scanned
        self.items[key] = item
        old = current.get("status") if current is not None else None  # ReturnValues=UPDATED_OLD
        return str(old) if old else ""

    def link_child(self, repository: str, child: str, index_digest: str, now: datetime) -> None:
        self._enter("link_child")
        key = (repository, child)
        current = self.items.get(key)
        if current is not None and index_digest in current.get("index_digests", []):
            return  # ConditionalCheckFailedException: already linked
        item: dict[str, Any] = dict(current) if current is not None else {"digest": child}
        item.update(
            {
                "repository": repository,
                "account": self.scope.account,
                "region": self.scope.region,
                "index_digests": [*item.get("index_digests", []), index_digest],
                "status": item.get("status", ImageStatus.PENDING.value),
                "updated_at": _json_time(now),
                "version": int(item.get("version", 0)) + 1,
            }
        )
        self.items[key] = item

    @staticmethod
    def _item(record: ImageRecord) -> dict[str, Any]:
        item: dict[str, Any] = json.loads(record.model_dump_json(exclude_none=True))
        return item


# -- EventBridge -----------------------------------------------------------------------------------------------------


class FakeAnnouncer(_Port):
    """The decision bus: every published DecisionDetail, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[DecisionDetail] = []

    def reject(self, times: int = 1) -> None:
        """PutEvents reports a failed entry (the adapter raises AnnounceError)."""
        self.fail("publish", AnnounceError("decision event rejected: InternalFailure: injected"), times)

    def publish(self, detail: DecisionDetail) -> None:
        self._enter("publish")
        self.published.append(detail)

    def actions(self, digest: str | None = None) -> list[str]:
        return [d.action.value for d in self.published if digest is None or d.digest == digest]

    def last(self) -> DecisionDetail:
        assert self.published, "nothing was announced"
        return self.published[-1]

    def clear(self) -> None:
        self.published.clear()


# -- SQS (delayed checks) --------------------------------------------------------------------------------------------


class FakeChecks(_Port):
    """The gate's delayed-check queue: what was scheduled, and a helper to take what is due."""

    def __init__(self) -> None:
        super().__init__()
        self.scheduled: list[FindingsCheck | UnscannedCheck] = []

    def schedule(self, check: FindingsCheck | UnscannedCheck) -> None:
        self._enter("schedule")
        self.scheduled.append(check)

    def take(self) -> FindingsCheck | UnscannedCheck:
        """The next message SQS would deliver (the earliest due), removed from the queue."""
        assert self.scheduled, "no delayed check is queued"
        check = min(self.scheduled, key=lambda c: c.not_before)
        self.scheduled.remove(check)
        return check

    def kinds(self) -> list[str]:
        return [c.kind for c in self.scheduled]


# -- wiring ----------------------------------------------------------------------------------------------------------


class FakeClock:
    """GateContext.now: fixed until a test moves it."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Fakes:
    registry: FakeRegistry = field(default_factory=FakeRegistry)
    enhanced: FakeFindings = field(default_factory=FakeFindings)
    store: FakeAuditStore = field(default_factory=FakeAuditStore)
    announcer: FakeAnnouncer = field(default_factory=FakeAnnouncer)
    checks: FakeChecks = field(default_factory=FakeChecks)
    clock: FakeClock = field(default_factory=FakeClock)

    @property
    def ports(self) -> Ports:
        return Ports(
            registry=self.registry,
            enhanced=self.enhanced,
            store=self.store,
            announcer=self.announcer,
            checks=self.checks,
        )

    def reset_calls(self) -> None:
        for port in (self.registry, self.enhanced, self.store, self.announcer, self.checks):
            port.calls.clear()

    def gate(self, policy: Policy | None = None, mode: Literal["enforce", "audit"] = "enforce") -> ScanGate:
        """Another gate on the same fakes (a new Lambda invocation, maybe with another policy or mode)."""
        ctx = GateContext(
            policy=policy or default_policy(),
            mode=mode,
            account=self.store.scope.account,
            region=self.store.scope.region,
            environment="test",
            now=self.clock,
        )
        return ScanGate(ctx, self.ports)


def make_gate(
    policy: Policy | None = None, mode: Literal["enforce", "audit"] = "enforce", fakes: Fakes | None = None
) -> tuple[ScanGate, Fakes]:
    """A scan gate wired to fresh in-memory fakes (or the given ones)."""
    fakes = fakes or Fakes()
    return fakes.gate(policy, mode), fakes
