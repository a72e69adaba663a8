"""Delayed checks the gate sends itself through its SQS queue: look again at an image later, without sleeping
inside an invocation. SQS delays a message 15 minutes at most; a check due later is sent on until it is due."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ecr_warden.contracts.common import Digest, RepositoryName
from ecr_warden.contracts.parsing import validate_model


class _Check(BaseModel):
    # defer_build: built at the first delayed check, not at every cold start of the gate (docs/PERFORMANCE.md)
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    account: str = Field(pattern=r"^\d{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    repository: RepositoryName
    digest: Digest
    tags: list[str] = Field(default_factory=list)
    not_before: AwareDatetime
    trigger_event_id: str | None = None


class FindingsCheck(_Check):
    """The scanner's counts reached a threshold before its findings were listed: look again."""

    kind: Literal["findings"] = "findings"
    counts: dict[str, int]
    basic: bool  # ECR basic scanning (DescribeImageScanFindings) rather than Inspector (ListFindings)
    first_seen: AwareDatetime
    attempt: int = Field(0, ge=0, le=64)
    scanned_at: AwareDatetime | None = None  # the scan's time (its event's); None in a check queued by an older version


class UnscannedCheck(_Check):
    """An image was pushed: by `not_before` it should have a scan result."""

    kind: Literal["unscanned"] = "unscanned"
    pushed_at: AwareDatetime


DelayedCheck = Annotated[FindingsCheck | UnscannedCheck, Field(discriminator="kind")]


class _Envelope(BaseModel):
    model_config = ConfigDict(defer_build=True)

    check: DelayedCheck


def parse_check(raw: Any) -> FindingsCheck | UnscannedCheck:
    """A queued check, validated; a bad one raises EventValidationError naming the field."""
    return validate_model(_Envelope, {"check": raw}, what="delayed check").check


def due_in(check: FindingsCheck | UnscannedCheck, now: datetime) -> float:
    return max(0.0, (check.not_before - now).total_seconds())
