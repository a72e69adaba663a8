"""ECR registry replication, per registry (account and region), as ECR plays it.

The configuration is kept as the client sent it, `deleteReplication` included (botocore, and so moto, model
neither the field nor more than one rule), and answered raw by DescribeRegistry. Pushes matching a rule are
copied to its destinations; deletions (tag removals and digests) only where the rule enables deleteReplication.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ecr_warden.domain.images import Scope

MAX_RULES = 10
MAX_DESTINATIONS = 25
# The service-linked role ECR replicates with: calls made with it are replicated again nowhere.
REPLICATION_ROLE_NAME = "AWSServiceRoleForECRReplication"
REPLICATION_ROLE_PATH = "/aws-service-role/replication.ecr.amazonaws.com/"
REPLICATION_ROLE = f"{REPLICATION_ROLE_PATH.strip('/')}/{REPLICATION_ROLE_NAME}"  # as a role "name" with its path
REPLICATION_SERVICE = "replication.ecr.amazonaws.com"


class ReplicationError(ValueError):
    """A configuration ECR refuses (InvalidParameterException / ValidationException)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Target:
    """Where one replicated operation goes, and whether deletions follow."""

    scope: Scope
    deletes: bool


def _rule_matches(rule: dict[str, Any], repository: str) -> bool:
    filters = rule.get("repositoryFilters") or []
    return not filters or any(
        f.get("filterType") == "PREFIX_MATCH" and repository.startswith(str(f.get("filter", ""))) for f in filters
    )


def validate(configuration: Any, source: Scope) -> dict[str, Any]:
    """ECR's checks of PutReplicationConfiguration; the configuration as given."""
    if not isinstance(configuration, dict) or not isinstance(configuration.get("rules"), list):
        raise ReplicationError("InvalidParameterException", "replicationConfiguration.rules is required")
    rules: list[Any] = configuration["rules"]
    if len(rules) > MAX_RULES:
        raise ReplicationError("ValidationException", f"A replication configuration has at most {MAX_RULES} rules")
    for rule in rules:
        destinations = rule.get("destinations") if isinstance(rule, dict) else None
        if not isinstance(destinations, list) or not 1 <= len(destinations) <= MAX_DESTINATIONS:
            raise ReplicationError("InvalidParameterException", f"each rule needs 1..{MAX_DESTINATIONS} destinations")
        for destination in destinations:
            if (destination.get("registryId"), destination.get("region")) == (source.account, source.region):
                raise ReplicationError(
                    "InvalidParameterException",
                    "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: "
                    "'Replication destination cannot be the same as the source registry'",
                )
        for repository_filter in rule.get("repositoryFilters") or []:
            if repository_filter.get("filterType") != "PREFIX_MATCH" or not repository_filter.get("filter"):
                raise ReplicationError(
                    "InvalidParameterException", "repositoryFilters take a filter with filterType PREFIX_MATCH"
                )
    return configuration


class ReplicationConfigurations:
    """The replication configuration of every registry, by scope."""

    def __init__(self) -> None:
        self._configurations: dict[Scope, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def put(self, scope: Scope, configuration: dict[str, Any]) -> None:
        with self._lock:
            self._configurations[scope] = configuration

    def get(self, scope: Scope) -> dict[str, Any]:
        with self._lock:
            return self._configurations.get(scope) or {"rules": []}

    def targets(self, source: Scope, repository: str) -> list[Target]:
        """Each destination a push to `repository` in `source` is copied to, once, with whether deletions follow
        (any matching rule that enables deleteReplication for that destination)."""
        found: dict[Scope, bool] = {}
        for rule in self.get(source)["rules"]:
            if not _rule_matches(rule, repository):
                continue
            deletes = bool((rule.get("deleteReplication") or {}).get("enabled"))
            for destination in rule["destinations"]:
                scope = Scope(str(destination["registryId"]), str(destination["region"]))
                found[scope] = found.get(scope, False) or deletes
        return [Target(scope, deletes) for scope, deletes in found.items()]


def is_replication_role(role_arn: str | None) -> bool:
    return bool(role_arn) and str(role_arn).endswith(f"/{REPLICATION_ROLE_NAME}")


def replication_role_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:role{REPLICATION_ROLE_PATH}{REPLICATION_ROLE_NAME}"


def replication_action_event(
    source: Scope, destination: Scope, repository: str, digest: str, tag: str | None
) -> dict[str, Any]:
    """`ECR Replication Action`, which ECR sends in the destination when it has replicated an image there."""
    detail: dict[str, Any] = {
        "result": "SUCCESS",
        "repository-name": repository,
        "image-digest": digest,
        "source-account": source.account,
        "action-type": "REPLICATE",
        "source-region": source.region,
    }
    if tag:
        detail["image-tag"] = tag
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECR Replication Action",
        "source": "aws.ecr",
        "account": destination.account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": destination.region,
        "resources": [f"arn:aws:ecr:{destination.region}:{destination.account}:repository/{repository}"],
        "detail": detail,
    }
