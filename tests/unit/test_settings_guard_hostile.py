"""Hostile input at the settings guard's entry point: generated events (random JSON, CloudTrail samples with fields
replaced by anything, fan-out messages and schedule inputs with anything in them). Every input is answered without
an unhandled exception, and one that is rejected has caused no ECR write."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecr_warden.repository_settings.entry import process
from ecr_warden.settings import SettingsGuardSettings
from tests.conftest import EVENTS, load_event
from tests.hostile import load_samples, mutated
from tests.unit.test_settings_guard_support import World

SETTINGS = SettingsGuardSettings.model_validate(
    {"audit_table_name": "t", "decision_bus_name": "b", "reconcile_queue_url": "q"}
)
SAMPLES = [load_event(p.name) for p in sorted(EVENTS.glob("cloudtrail-*.json"))]
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=300))
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=20), inner, max_size=4)),
    max_leaves=12,
)
FIELDS = [
    ("detail", "requestParameters"),
    ("detail", "requestParameters", "repositoryName"),
    ("detail", "requestParameters", "resourceArn"),
    ("detail", "userIdentity"),
    ("detail", "eventName"),
    ("detail", "eventSource"),
    ("detail", "eventTime"),
    ("detail", "errorCode"),
    ("detail",),
    ("account",),
    ("source",),
    ("detail-type",),
    ("time",),
]


class DeadLetter:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, event: Any, error: Exception, function_name: str) -> None:
        self.sent.append((event, error))


@st.composite
def mutated_cloudtrail(draw: st.DrawFn) -> Any:
    event = copy.deepcopy(draw(st.sampled_from(SAMPLES)))
    for path in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3)):
        node = event
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[path[-1]] = draw(anything)
    return event


fan_out_messages = st.builds(
    lambda bodies: {
        "Records": [
            {
                "messageId": str(n),
                "receiptHandle": "r",
                "body": b,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                "awsRegion": "us-east-1",
            }
            for n, b in enumerate(bodies)
        ]
    },
    st.lists(
        st.one_of(
            st.text(max_size=200),
            anything.map(json.dumps),
            st.fixed_dictionaries(
                {
                    "kind": st.just("reconcile"),
                    "run_id": st.text(max_size=5),
                    "account": st.text(max_size=13),
                    "repositories": st.lists(st.text(max_size=30), max_size=3),
                }
            ).map(json.dumps),
        ),
        min_size=1,
        max_size=3,
    ),
)
schedule_inputs = st.dictionaries(st.sampled_from(["ecr-warden", "account", "execution_id"]), anything, max_size=3)
inputs = st.one_of(anything, mutated_cloudtrail(), mutated_cloudtrail(), fan_out_messages, schedule_inputs)


@settings(max_examples=1200, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=inputs)
def test_any_input_is_answered_and_rejections_write_nothing(raw: Any) -> None:
    world = World()
    world.registry.create("ses-base/scratchpad")
    dead_letter = DeadLetter()
    result = process(raw, SETTINGS, lambda _settings, _account: world.guard(), dead_letter)
    assert isinstance(result, dict)
    if result.get("status") == "rejected":
        assert world.registry.writes() == 0
        assert len(dead_letter.sent) == 1


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=mutated(load_samples(*(p.name for p in sorted(EVENTS.glob("cloudtrail-*.json"))))))
def test_mutated_cloudtrail_samples_anywhere_are_answered(raw: Any) -> None:
    """The shared mutator (tests/hostile.py): any field of a real sample dropped, replaced or added to."""
    test_any_input_is_answered_and_rejections_write_nothing.hypothesis.inner_test(raw=raw)  # type: ignore[attr-defined]
