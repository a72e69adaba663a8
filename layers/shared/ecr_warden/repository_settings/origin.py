"""Who caused a CloudTrail event: ecr-warden's own role (ignored: loop safety), and for CreateRepository which path
created the repository. Pure.

Only the IAM role behind the session identifies ecr-warden: the user agent is set by the caller and anyone can
copy ours, so it is never trusted to skip an event."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from ecr_warden.contracts.aws_events import CloudTrailEcrDetail

CreationPath = Literal["person_or_pipeline", "pull_through_cache", "replication", "create_on_push"]
ECR_SERVICE = "ecr.amazonaws.com"
REPLICATION_ROLE = "AWSServiceRoleForECRReplication"


def is_own_call(detail: CloudTrailEcrDetail, own_roles: Iterable[str]) -> bool:
    role = detail.user_identity.role_arn
    return role is not None and role in set(own_roles)


def made_by_ecr(detail: CloudTrailEcrDetail) -> bool:
    """ECR made the call itself (on someone's behalf, or as a service)."""
    identity = detail.user_identity
    return identity.type == "AWSService" or ECR_SERVICE in (
        identity.invoked_by,
        detail.source_ip_address,
        detail.user_agent,
    )


def creation_path(detail: CloudTrailEcrDetail, pull_through_prefixes: Iterable[str] = ()) -> CreationPath:
    """ECR records repositories it creates for itself as calls invoked by the ECR service: replication under its
    service-linked role, pull through cache and create-on-push on behalf of the principal who pulled or pushed
    (`invokedBy`/`sourceIPAddress` ecr.amazonaws.com). A pull through cache repository's name starts with one of
    the cache rules' prefixes; any other service-made repository was created on push."""
    identity = detail.user_identity
    role = identity.role_arn or identity.arn or ""
    if REPLICATION_ROLE in role or (identity.invoked_by or "").startswith("replication.ecr"):
        return "replication"
    if not made_by_ecr(detail):
        return "person_or_pipeline"
    name = detail.repository_name or ""
    if any(name.startswith(prefix.rstrip("/") + "/") for prefix in pull_through_prefixes):
        return "pull_through_cache"
    return "create_on_push"
