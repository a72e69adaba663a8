"""GovernedRepositories: the IAM pattern ECR writes are granted on. Events about other repositories are left alone
(no AWS call, no dead letter), by the scan gate and by the settings guard; the pattern follows IAM's wildcards."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecr_warden.gate import entry
from ecr_warden.settings import GateSettings
from tests.events import CRITICAL, inspector_scan, push
from tests.fakes import Fakes

SETTINGS = {
    "AUDIT_TABLE_NAME": "t",
    "DECISION_BUS_NAME": "b",
    "DELAYED_CHECKS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
}


@pytest.mark.parametrize(
    ("pattern", "repository", "governed"),
    [
        ("*", "ses-base/api-server", True),
        ("ses-base/*", "ses-base/api-server", True),
        ("ses-base/*", "ses-base/team/deep", True),  # IAM's * crosses "/"
        ("ses-base/*", "other/api-server", False),
        ("ses-base/api-?erver", "ses-base/api-server", True),
        ("ses-base/api-server", "ses-base/api-server-2", False),
    ],
)
def test_the_pattern_follows_iam_wildcards(pattern: str, repository: str, governed: bool) -> None:
    settings = GateSettings.model_validate({**SETTINGS, "GOVERNED_REPOSITORIES": pattern})
    assert settings.governs(repository) is governed


def _raw(event: Any) -> dict[str, Any]:
    return event.model_dump(mode="json", by_alias=True)


def test_the_gate_leaves_ungoverned_repositories_alone() -> None:
    fakes = Fakes()
    fakes.registry.create_repository()
    digest = fakes.registry.push("v1", "bad")
    fakes.enhanced.set(digest, CRITICAL)
    settings = GateSettings.model_validate({**SETTINGS, "GOVERNED_REPOSITORIES": "other-team/*"})
    built: list[str] = []

    def factory(_settings: GateSettings, account: str) -> Any:
        built.append(account)
        return fakes.gate()

    for event in (inspector_scan(digest, ["v1"], {"CRITICAL": 1, "TOTAL": 1}), push(digest, "v1")):
        result = entry.process(_raw(event), settings, gate_factory=factory)
        assert result["status"] == "ignored"
        assert "outside GovernedRepositories" in result["reason"]
    assert built == [], "no gate, no AWS call"
    assert fakes.registry.tags(digest) == ["v1"]


def test_the_gate_acts_on_governed_repositories() -> None:
    fakes = Fakes()
    fakes.registry.create_repository()
    digest = fakes.registry.push("v1", "bad")
    fakes.enhanced.set(digest, CRITICAL)
    settings = GateSettings.model_validate({**SETTINGS, "GOVERNED_REPOSITORIES": "ses-base/*"})
    event = inspector_scan(digest, ["v1"], {"CRITICAL": 1, "TOTAL": 1})
    result = entry.process(_raw(event), settings, gate_factory=lambda _s, _a: fakes.gate())
    assert result["action"] == "quarantined"


def test_the_settings_guard_never_writes_outside_governed_repositories() -> None:
    from dataclasses import replace

    from ecr_warden.contracts.aws_events import CloudTrailEcrEvent
    from ecr_warden.contracts.parsing import parse_aws_event
    from tests.unit.test_settings_guard_support import World, cloudtrail

    world = World()
    world.registry.create("ses-base/worker")
    world.registry.create("other/app")
    guard = world.guard()
    guard.ctx = replace(guard.ctx, governed_repositories="ses-base/*")

    def created(repository: str) -> CloudTrailEcrEvent:
        event = parse_aws_event(cloudtrail(repository=repository))
        assert isinstance(event, CloudTrailEcrEvent)
        return event

    assert guard.on_api_call(created("other/app")).result == "ignored"
    assert sum(world.registry.calls.values()) == 0
    assert guard.on_api_call(created("ses-base/worker")).result == "enforced"
    guard.start_reconcile("run-1")
    queued = [name for body in world.fan_out.bodies for name in json.loads(body)["repositories"]]
    assert queued == ["ses-base/worker"]
