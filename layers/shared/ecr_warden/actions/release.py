"""`release`: an admin releases a blocked image; its recorded tags come back exactly, with an audit trail."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ecr_warden.actions.registry import ReleaseError, RemediationAction, Who, Why, register
from ecr_warden.contracts.common import Digest, RepositoryName
from ecr_warden.contracts.decision import Action
from ecr_warden.domain.records import BLOCKED, ImageStatus
from ecr_warden.gate import restore, transitions
from ecr_warden.gate.acting import Actor
from ecr_warden.gate.context import Outcome, Trigger


class ReleaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: RepositoryName
    digest: Digest
    reason: str = Field(min_length=1, max_length=1000)
    by: str = Field(min_length=1, max_length=200)


class AdminRelease(ReleaseRequest):
    """The admin function's `release` payload (admin/requests.py)."""

    action: Literal["release"]
    reason: Why  # stricter than the CLI's: at least 3 printable characters
    by: Who


@register
class Release(RemediationAction[ReleaseRequest]):
    name = "release"
    input_model = ReleaseRequest
    admin_model = AdminRelease
    permissions: ClassVar[frozenset[str]] = frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "ecr:DescribeImages",
            "ecr:BatchGetImage",
            "ecr:PutImage",
            "ecr:BatchDeleteImage",
            "ecr:UpdateImageStorageClass",
            "events:PutEvents",
        }
    )

    def run(self, request: ReleaseRequest, gate: Actor) -> Outcome:
        """Running it again on a released image finishes whatever an interrupted release left undone."""
        store, registry = gate.ports.store, gate.ports.registry
        record = store.get(request.repository, request.digest)
        image = f"{request.repository}@{request.digest}"
        if record is None:
            raise ReleaseError(f"{image}: ecr-warden has no record of this image")
        if record.status is ImageStatus.RELEASED and record.pending_announcement is not None:
            decision = transitions.decision_of(gate.ctx, record)  # an interrupted release: finish, announce once
            return restore.finish(gate, record, decision, Trigger("admin release", None))
        if record.status is ImageStatus.RELEASED:
            restoration = restore.restore_in_ecr(registry, record)
            action = Action.NOOP if restoration.complete else Action.RELEASE_INCOMPLETE
            reason = f"already released; {restoration.summary()}"
            return Outcome(request.repository, request.digest, action, reason, record.status)
        if record.status not in (*BLOCKED, ImageStatus.TAGGED, ImageStatus.AUDITED):
            raise ReleaseError(f"{image} is {record.status.value}: there is nothing to release")
        decision = transitions.decision_of(gate.ctx, record)
        reason = f"released by {request.by}: {request.reason}"
        return restore.release(gate, record, decision, reason, Trigger("admin release", None))
