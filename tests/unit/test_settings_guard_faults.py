"""Fault injection for the settings guard: a throttle, 5xx or timeout at exactly one call of a run (every call a
clean run makes, for each trigger type), then Lambda's (or SQS's) retries of the same trigger. The end state is
consistent every time: the repository as the policy says, one audit record done, and one decision (the notifier
drops a repeated decision id) that lists every change the trigger made."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ecr_warden.contracts.aws_events import CloudTrailEcrEvent
from ecr_warden.contracts.parsing import parse_aws_event
from tests.unit.test_settings_guard_support import World, cloudtrail

REPO = "ses-base/scratchpad"
ATTEMPTS = 3
EXPECTED = {"tag_mutability", "lifecycle_policy", "repository_policy", "tags", "report_tag"}


class AwsError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


ERRORS: dict[str, Callable[[], Exception]] = {
    "throttling": lambda: AwsError("ThrottlingException"),
    "server": lambda: AwsError("InternalServerError"),
    "timeout": lambda: TimeoutError("read timed out"),
}


def _event() -> CloudTrailEcrEvent:
    parsed = parse_aws_event(cloudtrail(event_id="fault"))
    assert isinstance(parsed, CloudTrailEcrEvent)
    return parsed


TRIGGERS: dict[str, Callable[[World], Any]] = {
    "cloudtrail": lambda world: world.guard().on_api_call(_event()),
    "reconcile": lambda world: world.guard().reconcile("run-1", [REPO]),
}


def _points(trigger: str) -> list[tuple[str, str]]:
    world = World()
    world.registry.create(REPO)
    TRIGGERS[trigger](world)
    return sorted((port, call) for port in ("registry", "audit", "announcer") for call in getattr(world, port).calls)


# "after": the call took effect but its answer was lost (a timeout after ECR applied the write)
CASES = [
    (t, port, call, e, when)
    for t in TRIGGERS
    for port, call in _points(t)
    for e in ERRORS
    for when in ("before", "after")
]


def test_every_call_of_a_run_is_a_fault_point() -> None:
    points = {(port, call) for _, port, call, _, _ in CASES}
    assert {("registry", "set_mutability"), ("registry", "tag"), ("audit", "claim"), ("announcer", "publish")} <= points


@pytest.mark.parametrize(("trigger", "port", "call", "error", "when"), CASES)
def test_a_fault_at_one_call_then_retries_ends_consistent(
    trigger: str, port: str, call: str, error: str, when: str
) -> None:
    world = World()
    world.registry.create(REPO)
    fake = getattr(world, port)
    original = getattr(fake, call)
    raised = {"done": False}

    def faulty(*args: Any, **kwargs: Any) -> Any:
        if raised["done"]:
            return original(*args, **kwargs)
        raised["done"] = True
        if when == "after":
            original(*args, **kwargs)
        raise ERRORS[error]()

    setattr(fake, call, faulty)
    for _ in range(ATTEMPTS):
        try:
            TRIGGERS[trigger](world)
            break
        except (AwsError, TimeoutError):
            world.later()
    repo = world.registry.repos[REPO]
    assert repo.mutability == "IMMUTABLE"
    assert repo.lifecycle_text
    assert repo.policy_text
    assert "Project" in repo.tags
    assert [item["status"] for item in world.audit.items.values()] == ["DONE"]
    decisions = {d.decision_id: d for d in world.announcer.published}
    assert len(decisions) == 1
    (decision,) = decisions.values()
    assert {c.setting for c in decision.settings_changes} == EXPECTED
    # a further delivery of the same trigger does nothing
    writes = world.registry.writes()
    TRIGGERS[trigger](world)
    assert world.registry.writes() == writes
