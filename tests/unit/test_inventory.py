"""EcrInventory's lifecycle preview: ECR refusing it or not finishing in time is "preview unavailable", never an
error; no lifecycle policy is said so; a preview already running is waited for."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ecr_warden.adapters.inventory import EcrInventory
from ecr_warden.domain.images import Scope


class Ecr:
    def __init__(self, start_error: str | None = None, statuses: tuple[str, ...] = ("COMPLETE",)) -> None:
        self.start_error, self.statuses, self.gets = start_error, list(statuses), 0

    def start_lifecycle_policy_preview(self, **_: Any) -> dict[str, Any]:
        if self.start_error:
            raise ClientError({"Error": {"Code": self.start_error, "Message": "no"}}, "StartLifecyclePolicyPreview")
        return {"status": "IN_PROGRESS"}

    def get_lifecycle_policy_preview(self, **_: Any) -> dict[str, Any]:
        self.gets += 1
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        answer: dict[str, Any] = {"status": status}
        if status == "COMPLETE":
            answer["previewResults"] = [{"imageDigest": "sha256:" + "a" * 64, "action": {"type": "EXPIRE"}}]
            answer["summary"] = {"expiringImageTotalCount": 3}
        return answer


def inventory(ecr: Ecr, wait: float = 5.0) -> EcrInventory:
    return EcrInventory("audit", Scope("123456789012", "us-east-1"), _ecr=ecr, preview_wait=wait, sleep=lambda _: None)


def test_a_completed_preview_counts_what_would_expire() -> None:
    preview = inventory(Ecr(statuses=("IN_PROGRESS", "COMPLETE"))).lifecycle_preview("r")
    assert (preview.available, preview.expiring, preview.message) == (True, 3, "3 image(s) would expire")
    assert preview.digests == ("sha256:" + "a" * 64,)


def test_refused_or_timed_out_is_preview_unavailable() -> None:
    refused = inventory(Ecr(start_error="AccessDeniedException")).lifecycle_preview("r")
    assert (refused.available, refused.message) == (False, "preview unavailable (AccessDeniedException)")
    slow = Ecr(statuses=("IN_PROGRESS",))
    timed_out = inventory(slow, wait=0.0).lifecycle_preview("r")
    assert (timed_out.available, timed_out.message) == (False, "preview unavailable (timed out)")
    failed = inventory(Ecr(statuses=("FAILED",))).lifecycle_preview("r")
    assert failed.message == "preview unavailable (failed)"


def test_no_policy_and_a_preview_already_running() -> None:
    none = inventory(Ecr(start_error="LifecyclePolicyNotFoundException")).lifecycle_preview("r")
    assert (none.available, none.message) == (True, "no lifecycle policy")
    running = inventory(Ecr(start_error="LifecyclePolicyPreviewInProgressException")).lifecycle_preview("r")
    assert (running.available, running.expiring) == (True, 3)
