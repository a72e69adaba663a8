"""Schedules of a template (SAM `ScheduleV2` and `Schedule` events, `AWS::Scheduler::Schedule` resources) are
provisioned and never fire by themselves; `LocalStack.fire_schedule` and `ecr-warden schedule fire` deliver one
on request, with the payload AWS would send."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecr_warden_tools.local.schedules import ScheduleError
from ecr_warden_tools.local.stack import LocalStack
from tests.e2e.conftest import run_cli, start_stack, stop_stack

pytestmark = pytest.mark.e2e

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  TicksQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: local-schedule-ticks
  ReportGroup:
    Type: AWS::Scheduler::ScheduleGroup
    Properties:
      Name: reports
  ReportFunction:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: local-schedule-report
      CodeUri: fn
      Handler: app.handler
      Runtime: python3.13
      Events:
        Nightly:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: cron(0 3 * * ? *)
            Input: '{"report": "admin"}'
        Hourly:
          Type: Schedule
          Properties:
            Schedule: rate(1 hour)
        Paused:
          Type: ScheduleV2
          Properties:
            Name: paused-report
            ScheduleExpression: rate(1 day)
            State: DISABLED
  TickSchedule:
    Type: AWS::Scheduler::Schedule
    Properties:
      Name: ticks
      GroupName: !Ref ReportGroup
      ScheduleExpression: rate(5 minutes)
      FlexibleTimeWindow:
        Mode: "OFF"
      Target:
        Arn: !GetAtt TicksQueue.Arn
        RoleArn: arn:aws:iam::123456789012:role/scheduler
        Input: '{"tick": 1}'
"""


def write_template(directory: Path) -> Path:
    (directory / "fn").mkdir()
    (directory / "fn" / "app.py").write_text("def handler(event, context):\n    return event\n")
    template = directory / "template.yaml"
    template.write_text(TEMPLATE)
    return template


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    template = write_template(tmp_path_factory.mktemp("scheduled"))
    with LocalStack(template, echo=lambda _line: None) as stack:
        yield stack


def _results(stack: LocalStack) -> list[Any]:
    return [invocation.result for invocation in stack.runtimes["ReportFunction"].invocations]


def test_schedules_are_recorded_and_never_fire_by_themselves(scheduled: LocalStack) -> None:
    names = {s["name"]: s for s in scheduled.list_schedules()}
    assert set(names) == {"ReportFunctionNightly", "local-schedule-report-Hourly", "paused-report", "ticks"}
    assert names["ReportFunctionNightly"] | {"input": None} == {
        "name": "ReportFunctionNightly",
        "kind": "ScheduleV2",
        "expression": "cron(0 3 * * ? *)",
        "state": "ENABLED",
        "group": "default",
        "target": "ReportFunction",
        "input": None,
    }
    assert names["paused-report"]["state"] == "DISABLED"
    assert names["ticks"]["group"] == "reports"
    # the local Scheduler and EventBridge know them, as `aws scheduler list-schedules` would show
    listed = scheduled.client("scheduler").list_schedules()["Schedules"]
    assert {s["Name"] for s in listed} >= {"ReportFunctionNightly", "paused-report", "ticks"}
    assert scheduled.client("events").describe_rule(Name="local-schedule-report-Hourly")["ScheduleExpression"] == (
        "rate(1 hour)"
    )
    time.sleep(1.5)
    assert _results(scheduled) == []


def test_firing_a_scheduler_schedule_invokes_the_function_with_its_input(scheduled: LocalStack) -> None:
    fired = scheduled.fire_schedule("ReportFunctionNightly")
    assert fired["payload"] == {"report": "admin"}
    assert scheduled.wait_idle()
    assert _results(scheduled)[-1] == {"report": "admin"}


def test_firing_an_eventbridge_schedule_sends_the_scheduled_event(scheduled: LocalStack) -> None:
    scheduled.fire_schedule("local-schedule-report-Hourly")
    assert scheduled.wait_idle()
    event = _results(scheduled)[-1]
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/local-schedule-report-Hourly"]
    assert event["detail"] == {}


def test_a_queue_target_gets_the_input_as_its_message(scheduled: LocalStack) -> None:
    scheduled.fire_schedule("ticks")
    sqs = scheduled.client("sqs")
    url = sqs.get_queue_url(QueueName="local-schedule-ticks")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url).get("Messages", [])
    assert [json.loads(m["Body"]) for m in messages] == [{"tick": 1}]


def test_an_unknown_schedule_is_an_error_listing_the_known_ones(scheduled: LocalStack) -> None:
    with pytest.raises(ScheduleError, match=r"no schedule named 'nope'.*ReportFunctionNightly"):
        scheduled.fire_schedule("nope")


def test_the_cli_lists_and_fires_schedules(tmp_path: Path) -> None:
    template = write_template(tmp_path)
    running = start_stack("--template", str(template))
    try:
        assert "schedules (never fired by a timer" in running.output()
        listed = running.cli("schedule", "list", "--endpoint-url", running.endpoint_url)
        assert "ReportFunctionNightly  cron(0 3 * * ? *)  ENABLED  -> ReportFunction" in listed.stdout
        fired = running.cli("schedule", "fire", "ReportFunctionNightly", "--endpoint-url", running.endpoint_url)
        assert 'fired ReportFunctionNightly -> ReportFunction with {"report": "admin"}' in fired.stdout
        running.wait_for(lambda: "schedule ReportFunctionNightly" in running.output(), what="the fired schedule")
        unknown = run_cli("schedule", "fire", "nope", "--endpoint-url", running.endpoint_url, check=False)
        assert unknown.returncode == 2
        assert unknown.stderr.count("\n") == 1
        assert "no schedule named 'nope'" in unknown.stderr
    finally:
        assert stop_stack(running) == 0


def test_a_schedule_rule_matches_no_event(scheduled: LocalStack) -> None:
    """A `Schedule` event's rule has no pattern: EventBridge never matches it to events (moto matched it to all)."""
    before = len(_results(scheduled))
    answer = scheduled.client("events").put_events(
        Entries=[{"Source": "aws.ecr", "DetailType": "ECR Image Action", "Detail": "{}", "EventBusName": "default"}]
    )
    assert answer["FailedEntryCount"] == 0
    assert scheduled.wait_idle()
    assert len(_results(scheduled)) == before
