"""What the settings guard needs from the outside world. Adapters implement these
(ecr_warden.adapters.repository_settings); tests pass in-memory fakes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ecr_warden.contracts.decision import DecisionDetail
from ecr_warden.repository_settings.state import RegistryScanning, RepositoryState


class SettingsRegistry(Protocol):
    def repository(self, name: str) -> RepositoryState | None: ...
    def registry_scanning(self) -> RegistryScanning | None: ...
    def pull_through_prefixes(self) -> list[str]: ...
    def creation_templates(self) -> list[dict[str, Any]] | None: ...
    def repository_names(self) -> Iterator[str]: ...
    def set_mutability(self, name: str, mode: str, exclusions: Sequence[str]) -> None: ...
    def put_lifecycle_policy(self, name: str, text: str) -> None: ...
    def set_repository_policy(self, name: str, text: str) -> None: ...
    def tag(self, arn: str, tags: Mapping[str, str]) -> None: ...
    def put_registry_scanning(self, configuration: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class Prior:
    """What an earlier delivery of the same trigger left in the audit table."""

    status: str  # IN_PROGRESS | FAILED | DONE | SKIPPED
    changes: tuple[dict[str, Any], ...] = ()


class SettingsAudit(Protocol):
    def get(self, repository: str, trigger_id: str) -> Prior | None: ...
    def claim(self, repository: str, trigger_id: str, now: datetime, lease_seconds: int) -> bool: ...
    def fail(self, repository: str, trigger_id: str, changes: Sequence[Mapping[str, Any]]) -> None: ...
    def finish(self, repository: str, trigger_id: str, entry: Mapping[str, Any]) -> bool: ...
    def remember_report(self, repository: str, fingerprint: str) -> bool: ...


class Announcer(Protocol):
    def publish(self, detail: DecisionDetail) -> None: ...


class FanOut(Protocol):
    def send(self, bodies: Sequence[str]) -> None: ...


@dataclass
class SettingsPorts:
    registry: SettingsRegistry
    audit: SettingsAudit
    announcer: Announcer
    fan_out: FanOut | None = None
