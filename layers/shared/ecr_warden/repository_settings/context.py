"""What the settings guard works with: its context, the trigger of a run, and the outcome it reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from ecr_warden.policy.model import Policy
from ecr_warden.repository_settings.origin import CreationPath


@dataclass(frozen=True)
class SettingsContext:
    policy: Policy
    mode: Literal["enforce", "audit"]
    account: str
    region: str
    environment: str
    own_roles: tuple[str, ...] = ()
    governed_repositories: str = "*"  # the IAM pattern ECR writes are granted on (GovernedRepositories)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class Trigger:
    id: str  # unique per delivery source: the CloudTrail event id, or "reconcile#<run>"
    name: str  # the API call, or "reconcile"
    creation_path: CreationPath | None = None


@dataclass(frozen=True)
class Outcome:
    result: str  # enforced | would_enforce | reported | compliant | skipped | duplicate | ignored | fanned_out
    repository: str | None = None
    reason: str = ""
    changes: tuple[str, ...] = ()
