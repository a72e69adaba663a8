"""In-memory fakes of the settings guard's ports, with ECR's and DynamoDB's semantics, call counting, fault
injection (`inject("put_lifecycle_policy")`) and hooks (`before("tag", ...)`). No tests here."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ecr_warden.contracts.decision import DecisionDetail
from ecr_warden.policy.load import default_policy
from ecr_warden.policy.model import Policy
from ecr_warden.repository_settings.context import SettingsContext
from ecr_warden.repository_settings.ports import Prior, SettingsPorts
from ecr_warden.repository_settings.service import SettingsGuard
from ecr_warden.repository_settings.state import RegistryScanning, RepositoryState, ScanRule
from tests.conftest import load_event

ACCOUNT = "123456789012"
OWN_ROLE = "arn:aws:iam::123456789012:role/ecr-warden-dev-settings-guard"
WRITES = ("set_mutability", "put_lifecycle_policy", "set_repository_policy", "tag", "put_registry_scanning")


class Throttled(Exception):
    """Stands in for a botocore ThrottlingException / 500 / timeout that survived the SDK's retries."""

    response = {"Error": {"Code": "ThrottlingException"}}


@dataclass
class Faults:
    calls: Counter[str] = field(default_factory=Counter)
    failing: dict[str, int] = field(default_factory=dict)  # call -> how many more times it fails
    hooks: dict[str, Callable[[], None]] = field(default_factory=dict)

    def inject(self, call: str, times: int = 1) -> None:
        self.failing[call] = times

    def before(self, call: str, hook: Callable[[], None]) -> None:
        self.hooks[call] = hook

    def _enter(self, call: str) -> None:
        self.calls[call] += 1
        hook = self.hooks.pop(call, None)
        if hook:
            hook()
        if self.failing.get(call, 0) > 0:
            self.failing[call] -= 1
            raise Throttled(f"{call}: throttled")


@dataclass
class FakeSettingsRegistry(Faults):
    repos: dict[str, RepositoryState] = field(default_factory=dict)
    scanning: RegistryScanning = field(
        default_factory=lambda: RegistryScanning("ENHANCED", (ScanRule("CONTINUOUS_SCAN", ("*",)),))
    )
    prefixes: list[str] = field(default_factory=list)
    templates: list[dict[str, Any]] | None = field(default_factory=list)

    def create(self, name: str, **settings: Any) -> None:
        defaults: dict[str, Any] = {"mutability": "MUTABLE"}
        self.repos[name] = RepositoryState(
            name, f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}", **(defaults | settings)
        )

    def writes(self) -> int:
        return sum(self.calls[w] for w in WRITES)

    def repository(self, name: str) -> RepositoryState | None:
        self._enter("repository")
        return copy.deepcopy(self.repos.get(name))

    def registry_scanning(self) -> RegistryScanning | None:
        self._enter("registry_scanning")
        return self.scanning

    def pull_through_prefixes(self) -> list[str]:
        self._enter("pull_through_prefixes")
        return list(self.prefixes)

    def creation_templates(self) -> list[dict[str, Any]] | None:
        self._enter("creation_templates")
        return copy.deepcopy(self.templates)

    def repository_names(self) -> Iterator[str]:
        self._enter("repository_names")
        yield from sorted(self.repos)

    def _update(self, name: str, **changes: Any) -> None:
        if name not in self.repos:
            raise Throttled("RepositoryNotFoundException")  # a write to a repository deleted meanwhile
        self.repos[name] = replace(self.repos[name], **changes)

    def set_mutability(self, name: str, mode: str, exclusions: Sequence[str]) -> None:
        self._enter("set_mutability")
        self._update(name, mutability=mode, mutability_exclusions=tuple(exclusions))

    def put_lifecycle_policy(self, name: str, text: str) -> None:
        self._enter("put_lifecycle_policy")
        json.loads(text)
        self._update(name, lifecycle_text=text)

    def set_repository_policy(self, name: str, text: str) -> None:
        self._enter("set_repository_policy")
        json.loads(text)
        self._update(name, policy_text=text)

    def tag(self, arn: str, tags: Mapping[str, str]) -> None:
        self._enter("tag")
        name = arn.split(":repository/", 1)[1]
        self._update(name, tags={**self.repos[name].tags, **tags})

    def put_registry_scanning(self, configuration: Mapping[str, Any]) -> None:
        self._enter("put_registry_scanning")
        rules = tuple(
            ScanRule(r["scanFrequency"], tuple(f["filter"] for f in r["repositoryFilters"]))
            for r in configuration["rules"]
        )
        self.scanning = RegistryScanning(configuration["scanType"], rules)


@dataclass
class FakeSettingsAudit(Faults):
    items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    state: dict[str, str] = field(default_factory=dict)

    def get(self, repository: str, trigger_id: str) -> Prior | None:
        self._enter("get")
        item = self.items.get((repository, trigger_id))
        return Prior(item["status"], tuple(item.get("changes", ()))) if item else None

    def claim(self, repository: str, trigger_id: str, now: datetime, lease_seconds: int) -> bool:
        self._enter("claim")
        item = self.items.get((repository, trigger_id))
        if item and item["status"] != "FAILED" and not item.get("lease_until", now) < now:
            return False
        self.items[(repository, trigger_id)] = (item or {}) | {
            "status": "IN_PROGRESS",
            "lease_until": now + timedelta(seconds=lease_seconds),
        }
        return True

    def fail(self, repository: str, trigger_id: str, changes: Sequence[Mapping[str, Any]]) -> None:
        self._enter("fail")
        item = self.items.setdefault((repository, trigger_id), {})
        item.update(status="FAILED", changes=[dict(c) for c in changes])
        item.pop("lease_until", None)

    def finish(self, repository: str, trigger_id: str, entry: Mapping[str, Any]) -> bool:
        self._enter("finish")
        if entry["status"] == "SKIPPED" and (repository, trigger_id) in self.items:
            return False
        self.items[(repository, trigger_id)] = json.loads(json.dumps(dict(entry)))
        return True

    def remember_report(self, repository: str, fingerprint: str) -> bool:
        self._enter("remember_report")
        if self.state.get(repository) == fingerprint:
            return False
        self.state[repository] = fingerprint
        return True


@dataclass
class FakeAnnouncer(Faults):
    published: list[DecisionDetail] = field(default_factory=list)

    def publish(self, detail: DecisionDetail) -> None:
        self._enter("publish")
        DecisionDetail.model_validate_json(detail.model_dump_json())  # what the notifier will parse
        self.published.append(detail)


@dataclass
class FakeFanOut(Faults):
    bodies: list[str] = field(default_factory=list)

    def send(self, bodies: Sequence[str]) -> None:
        self._enter("send")
        self.bodies += list(bodies)


@dataclass
class World:
    registry: FakeSettingsRegistry = field(default_factory=FakeSettingsRegistry)
    audit: FakeSettingsAudit = field(default_factory=FakeSettingsAudit)
    announcer: FakeAnnouncer = field(default_factory=FakeAnnouncer)
    fan_out: FakeFanOut = field(default_factory=FakeFanOut)
    time: datetime = datetime(2026, 1, 1, tzinfo=UTC)

    def later(self, seconds: float = 61) -> None:
        """Let time pass: Lambda retries an event a minute or more after a failed attempt."""
        self.time += timedelta(seconds=seconds)

    def guard(self, policy: Policy | None = None, mode: Literal["enforce", "audit"] = "enforce") -> SettingsGuard:
        ctx = SettingsContext(
            policy or default_policy(), mode, ACCOUNT, "us-east-1", "dev", (OWN_ROLE,), now=lambda: self.time
        )
        return SettingsGuard(ctx, SettingsPorts(self.registry, self.audit, self.announcer, self.fan_out))


def cloudtrail(
    name: str = "cloudtrail-create-repository-defaults.json",
    repository: str | None = None,
    event_id: str | None = None,
    role: str | None = None,
    **detail: Any,
) -> dict[str, Any]:
    """A sample CloudTrail event re-aimed at a repository, with a fresh (or given) event id."""
    event = load_event(name)
    d = event["detail"]
    d["eventID"] = event_id or f"ev-{abs(hash((name, repository, role, json.dumps(detail, sort_keys=True))))}"
    if repository:
        d["requestParameters"]["repositoryName"] = repository
    if role:
        d["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = role
    d.update(detail)
    return event
