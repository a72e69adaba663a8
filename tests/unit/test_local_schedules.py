"""What a fired schedule delivers, as EventBridge Scheduler and EventBridge rules deliver it."""

from __future__ import annotations

import re

import pytest

from ecr_warden_tools.local.provision import ScheduleSpec
from ecr_warden_tools.local.schedules import ScheduleError, find, schedule_payload


def _schedule(kind: str, text: str | None, name: str = "SettingsGuardFunctionDailyReconcile") -> ScheduleSpec:
    return ScheduleSpec(
        name=name,
        expression="rate(1 day)",
        kind=kind,
        target_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        function="SettingsGuardFunction",
        input=text,
    )


def test_scheduler_context_attributes_in_the_input_are_replaced() -> None:
    text = (
        '{"ecr-warden": "reconcile", "execution_id": "<aws.scheduler.execution-id>", '
        '"arn": "<aws.scheduler.schedule-arn>", "at": "<aws.scheduler.scheduled-time>", '
        '"attempt": "<aws.scheduler.attempt-number>"}'
    )
    payload = schedule_payload(_schedule("ScheduleV2", text), "us-east-1", "123456789012")
    assert payload["ecr-warden"] == "reconcile"
    assert re.fullmatch(r"[0-9a-f-]{36}", payload["execution_id"])
    assert payload["arn"] == (
        "arn:aws:scheduler:us-east-1:123456789012:schedule/default/SettingsGuardFunctionDailyReconcile"
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", payload["at"])
    assert payload["attempt"] == "1"


def test_each_firing_is_a_new_execution() -> None:
    schedule = _schedule("ScheduleV2", '{"id": "<aws.scheduler.execution-id>"}')
    first, second = (schedule_payload(schedule, "us-east-1", "123456789012")["id"] for _ in range(2))
    assert first != second


def test_a_scheduler_schedule_without_input_sends_an_empty_object() -> None:
    assert schedule_payload(_schedule("ScheduleV2", None), "us-east-1", "123456789012") == {}


def test_an_eventbridge_schedule_without_input_sends_the_scheduled_event() -> None:
    event = schedule_payload(_schedule("Schedule", None, name="nightly"), "eu-west-1", "123456789012")
    assert event["detail-type"] == "Scheduled Event"
    assert event["resources"] == ["arn:aws:events:eu-west-1:123456789012:rule/nightly"]


def test_a_text_input_is_delivered_as_it_is() -> None:
    assert schedule_payload(_schedule("ScheduleV2", "ping"), "us-east-1", "123456789012") == "ping"


def test_an_unknown_schedule_names_the_known_ones() -> None:
    with pytest.raises(ScheduleError, match=r"no schedule named 'x' in the template \(schedules: a\)"):
        find({"a": _schedule("ScheduleV2", None, name="a")}, "x")
