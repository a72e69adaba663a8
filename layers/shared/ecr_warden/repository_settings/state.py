"""What ECR says a repository is (actual), and what ecr-warden would change (a plan of changes). Value types."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Setting = Literal["tag_mutability", "lifecycle_policy", "repository_policy", "tags", "registry_scanning", "report_tag"]
IAC_STACK_TAG = "aws:cloudformation:stack-name"


@dataclass(frozen=True)
class RepositoryState:
    name: str
    arn: str
    mutability: str
    mutability_exclusions: tuple[str, ...] = ()
    scan_on_push: bool = False
    encryption_type: str = "AES256"
    kms_key: str | None = None
    kms_key_manager: str | None = None  # CUSTOMER | AWS (the aws/ecr key); None: unknown
    tags: Mapping[str, str] = field(default_factory=dict)
    lifecycle_text: str | None = None
    policy_text: str | None = None

    def managed_by(self) -> str | None:
        """Infrastructure as code that owns the repository: CloudFormation (its stack tag) or Terraform (the
        ManagedBy tag the guide's Terraform sets, any casing of key and value)."""
        if IAC_STACK_TAG in self.tags:
            return f"CloudFormation stack {self.tags[IAC_STACK_TAG]}"
        for key, value in self.tags.items():
            if key.lower().replace("-", "").replace("_", "") == "managedby" and value.lower() == "terraform":
                return "Terraform"
        return None


@dataclass(frozen=True)
class ScanRule:
    frequency: str
    filters: tuple[str, ...]  # WILDCARD filters


@dataclass(frozen=True)
class RegistryScanning:
    scan_type: str
    rules: tuple[ScanRule, ...] = ()

    def frequency_for(self, repository: str) -> str | None:
        """The frequency the registry applies to the repository (matched by several rules, continuous scanning wins);
        None: not scanned automatically (MANUAL)."""
        matched = {r.frequency for r in self.rules if any(fnmatch.fnmatchcase(repository, f) for f in r.filters)}
        for frequency in ("CONTINUOUS_SCAN", "SCAN_ON_PUSH"):
            if frequency in matched:
                return frequency
        return next(iter(sorted(matched)), None)

    def ecr(self) -> dict[str, Any]:
        return {
            "scanType": self.scan_type,
            "rules": [
                {
                    "scanFrequency": r.frequency,
                    "repositoryFilters": [{"filter": f, "filterType": "WILDCARD"} for f in r.filters],
                }
                for r in self.rules
            ],
        }


@dataclass(frozen=True)
class ReplicationRule:
    """One rule of the registry's replication configuration (DescribeRegistry)."""

    destinations: tuple[str, ...]  # "<account>/<region>"
    prefixes: tuple[str, ...] = ()  # PREFIX_MATCH repository filters; none: every repository
    deletes: bool = False  # deleteReplication: image deletions and tag removals are replicated too

    def covers(self, repository: str) -> bool:
        return not self.prefixes or any(repository.startswith(prefix) for prefix in self.prefixes)


@dataclass(frozen=True)
class Change:
    """One setting to write: what it is now and what it will be (shown to people), and what the action needs."""

    setting: Setting
    before: str | None
    after: str | None
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    repository: str
    profile: str
    changes: tuple[Change, ...] = ()
    reports: tuple[str, ...] = ()  # gaps found and left as they are, each said for a person
    notes: tuple[str, ...] = ()  # worth knowing, not a gap

    @property
    def compliant(self) -> bool:
        return not self.changes and not self.reports
