"""`quarantine`: an admin blocks an image now, by repository and tag or digest, with a reason. It goes through the
gate's Actor, so the write-ahead record, the outbox and the announcement hold as for any decision, and the
decision says "quarantined by <who>: <reason>"."""

from __future__ import annotations

import hashlib
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ecr_warden.actions.registry import RemediationAction, RequestRejected, Who, Why, register
from ecr_warden.contracts.common import Digest, RepositoryName
from ecr_warden.contracts.decision import Action
from ecr_warden.domain.images import ImageRef
from ecr_warden.domain.records import BLOCKED, ImageStatus
from ecr_warden.gate.acting import Actor
from ecr_warden.gate.context import Case, Outcome, Trigger
from ecr_warden.gate.evaluate import Decision, Verdict

# ECR's tag format
Tag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,299}$")]


class QuarantineRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: RepositoryName
    digest: Digest | None = None
    tag: Tag | None = None  # the image a tag points at now (give the digest or the tag)
    reason: Why
    by: Who
    # set by the admin function (its invocation's id, the same on Lambda's retries): the decision's identity
    request_id: str | None = Field(None, max_length=100)


def resolve(actor: Actor, repository: str, digest: str | None, tag: str | None) -> str:
    """The digest the request names: given, or the one the tag points at now (RequestRejected when neither is in the
    repository)."""
    if (digest is None) == (tag is None):
        raise RequestRejected("digest", "give the image's digest or its tag (exactly one)")
    if digest is None:
        assert tag is not None
        found = actor.ports.registry.digest_of(repository, tag)
        if found is None:
            raise RequestRejected("tag", f"{repository}:{tag} does not exist (no such tag or repository)")
        return found
    if actor.ports.registry.describe(repository, digest) is None:
        raise RequestRejected("digest", f"{repository}@{digest} does not exist (no such image or repository)")
    return digest


def governed(actor: Actor, repository: str) -> None:
    if actor.ctx.policy.rule_for(repository) is None:
        raise RequestRejected("repository", f"{repository}: no policy rule covers it, so ecr-warden does not guard it")


class AdminQuarantine(QuarantineRequest):
    """The admin function's `quarantine` payload (admin/requests.py)."""

    action: Literal["quarantine"]
    request_id: None = None  # the invocation's own id, never the payload's


@register
class Quarantine(RemediationAction[QuarantineRequest]):
    name = "quarantine"
    input_model = QuarantineRequest
    admin_model = AdminQuarantine
    permissions: ClassVar[frozenset[str]] = frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "ecr:DescribeImages",
            "ecr:BatchGetImage",
            "ecr:PutImage",
            "ecr:BatchDeleteImage",
            "events:PutEvents",
        }
    )

    def run(self, request: QuarantineRequest, gate: Actor) -> Outcome:
        """Running it again (Lambda's retry of the same invocation) finishes what an interrupted run left undone and
        announces it once: the decision's fingerprint comes from the request id."""
        repository = request.repository
        governed(gate, repository)
        digest = resolve(gate, repository, request.digest, request.tag)
        image = ImageRef(repository, digest)
        record = gate.ports.store.get(repository, digest)
        rule = gate.ctx.policy.rule_for(repository)
        trigger = Trigger("admin quarantine", request.request_id)
        decision = Decision(
            verdict=Verdict.BLOCK,
            rule=rule.name if rule else None,
            block_method="quarantine",  # an admin asks for a quarantine, whatever the rule's block method
            audit=gate.ctx.audit_mode,
            reasons=[f"quarantined by {request.by}: {request.reason}"],
            severity_counts=dict(record.severity_counts) if record else {},
            counted=list(record.top_findings) if record else [],
            exempted=[],
            findings_total=record.findings_total if record else 0,
            # its identity is the request's: Lambda's retry of it is the same decision, a later request a new one
            pinned_fingerprint=_fingerprint(repository, digest, request.request_id or f"{request.by}|{request.reason}"),
        )
        if record is not None and record.status in BLOCKED and record.fingerprint != decision.fingerprint:
            kept = gate.enforce_quarantine(record, None, trigger) if record.status is ImageStatus.QUARANTINED else None
            reason = f"already {record.status.value.lower()}" + (f": {kept.reason}" if kept else "")
            return Outcome(repository, digest, kept.action if kept else Action.NOOP, reason, record.status)
        outcome = gate.apply(Case(image, [], decision, record, trigger))
        if outcome.action is Action.NOOP and record is not None and record.fingerprint == decision.fingerprint:
            # a retry of this request, whose quarantine an earlier run completed (and announced)
            return Outcome(repository, digest, Action.QUARANTINED, decision.reasons[0], record.status)
        return outcome


def _fingerprint(repository: str, digest: str, request: str) -> str:
    return hashlib.sha256(f"admin quarantine|{repository}|{digest}|{request}".encode()).hexdigest()[:32]
