"""What `report` reads, and nothing else: the repositories (DescribeRepositories, 1,000 a page), an image list with
sizes (DescribeImages), a repository's audit records (one Query on its partition) and a lifecycle preview
(StartLifecyclePolicyPreview, then GetLifecyclePolicyPreview until it completes or a deadline passes). Nothing here
writes: a preview is ECR's dry run of the repository's own lifecycle policy."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecr_warden.adapters.aws import client, error_code
from ecr_warden.adapters.dynamodb_items import deserialize_item, partition_key
from ecr_warden.admin.ports import ImageSummary, LifecyclePreview, RepositoryPage
from ecr_warden.domain.images import Scope

IAM_ACTIONS = frozenset(
    {
        "ecr:DescribeRepositories",
        "ecr:DescribeImages",
        "ecr:StartLifecyclePolicyPreview",
        "ecr:GetLifecyclePolicyPreview",
        "dynamodb:Query",
    }
)
PAGE = 1000  # DescribeRepositories' largest page
PREVIEW_WAIT_SECONDS = 5.0  # per repository; then "preview unavailable"
_GONE = frozenset({"RepositoryNotFoundException"})
_NO_POLICY = frozenset({"LifecyclePolicyNotFoundException"})


@dataclass
class EcrInventory:
    table_name: str
    scope: Scope
    _ecr: Any = field(default=None)
    _dynamodb: Any = field(default=None)
    preview_wait: float = PREVIEW_WAIT_SECONDS
    sleep: Callable[[float], None] = time.sleep

    @property
    def ecr(self) -> Any:
        return self._ecr or client("ecr", self.scope)

    @property
    def dynamodb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def repositories(self, page_token: str | None) -> RepositoryPage:
        """One DescribeRepositories page (1,000 names at most) and ECR's token of the next, if any."""
        args: dict[str, Any] = {"maxResults": PAGE}
        if page_token:
            args["nextToken"] = page_token
        response = self.ecr.describe_repositories(**args)
        names = [str(r["repositoryName"]) for r in response.get("repositories", [])]
        return RepositoryPage(names, response.get("nextToken"))

    def images(self, repository: str) -> list[ImageSummary] | None:
        """Every image of the repository (DescribeImages, 1,000 a page), or None when it no longer exists."""
        found: list[ImageSummary] = []
        try:
            pages = self.ecr.get_paginator("describe_images").paginate(
                repositoryName=repository, PaginationConfig={"PageSize": 1000}
            )
            for page in pages:
                for d in page.get("imageDetails", []):
                    pushed = d.get("imagePushedAt")
                    scan = d.get("imageScanStatus") or {}
                    found.append(
                        ImageSummary(
                            digest=str(d["imageDigest"]),
                            tags=tuple(d.get("imageTags") or ()),
                            size=int(d.get("imageSizeInBytes") or 0),
                            pushed_at=pushed if isinstance(pushed, datetime) else None,
                            scan_status=scan.get("status"),
                        )
                    )
        except Exception as exc:
            if error_code(exc) in _GONE:
                return None
            raise
        return found

    def records(self, repository: str) -> list[dict[str, Any]]:
        """The repository's audit items (one Query on its partition, paginated): image records and the rest."""
        found: list[dict[str, Any]] = []
        pages = self.dynamodb.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": partition_key(self.scope, repository)}},
        )
        for page in pages:
            found.extend(deserialize_item(item) for item in page.get("Items", []))
        return found

    def lifecycle_preview(self, repository: str) -> LifecyclePreview:
        """What the repository's lifecycle policy would expire now; `available` False (with why) when ECR refuses or
        the preview does not complete within `preview_wait` seconds. Never raises for ECR's answers. The count is
        the preview's summary; the digests listed are its first page's."""
        try:
            self.ecr.start_lifecycle_policy_preview(repositoryName=repository)
        except Exception as exc:
            code = error_code(exc)
            if code in _NO_POLICY:
                return LifecyclePreview(True, "no lifecycle policy", 0, ())
            if code != "LifecyclePolicyPreviewInProgressException":  # one already running: wait for it
                return LifecyclePreview(False, f"preview unavailable ({code or type(exc).__name__})", 0, ())
        deadline, delay = time.monotonic() + self.preview_wait, 0.2
        try:
            while True:
                response = self.ecr.get_lifecycle_policy_preview(repositoryName=repository, maxResults=100)
                status = response.get("status")
                if status == "COMPLETE":
                    return _expiring(response)
                if status not in (None, "IN_PROGRESS") or time.monotonic() + delay > deadline:
                    why = "timed out" if status in (None, "IN_PROGRESS") else str(status).lower()
                    return LifecyclePreview(False, f"preview unavailable ({why})", 0, ())
                self.sleep(delay)
                delay = min(delay * 2, 1.0)
        except Exception as exc:
            return LifecyclePreview(False, f"preview unavailable ({error_code(exc) or type(exc).__name__})", 0, ())


def _expiring(response: dict[str, Any]) -> LifecyclePreview:
    results = response.get("previewResults") or []
    digests = tuple(str(r.get("imageDigest")) for r in results if (r.get("action") or {}).get("type") == "EXPIRE")
    total = int((response.get("summary") or {}).get("expiringImageTotalCount", len(digests)))
    return LifecyclePreview(True, f"{total} image(s) would expire", total, digests)
