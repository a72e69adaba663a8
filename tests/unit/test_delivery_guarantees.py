"""Nothing is lost, and alarms reach people: read from the template itself, so a new function, queue or path
that forgets its dead-letter queue, alarm or concurrency bound fails here."""

from __future__ import annotations

from typing import Any

import pytest

from ecr_warden_tools.local.template import load_template
from tests.conftest import TEMPLATE

DOC = load_template(TEMPLATE)
RESOURCES: dict[str, Any] = DOC["Resources"]
FUNCTIONS = {name: spec for name, spec in RESOURCES.items() if spec["Type"] == "AWS::Serverless::Function"}


def _ref_name(value: Any) -> str | None:
    """The logical id a Ref / GetAtt points at."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


def _alarmed_queues() -> set[str]:
    """Queues with an alarm on visible messages that notifies the decisions topic."""
    alarmed = set()
    for spec in RESOURCES.values():
        props = spec.get("Properties", {})
        if spec["Type"] != "AWS::CloudWatch::Alarm" or props.get("MetricName") != "ApproximateNumberOfMessagesVisible":
            continue
        assert props.get("AlarmActions"), "an alarm that notifies nobody"
        for dimension in props.get("Dimensions", []):
            if dimension["Name"] == "QueueName" and (queue := _ref_name(dimension["Value"])):
                alarmed.add(queue)
    return alarmed


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_asynchronous_invocation_ends_in_an_alarmed_dead_letter_queue(function: str) -> None:
    props = FUNCTIONS[function]["Properties"]
    invoke = props.get("EventInvokeConfig", {})
    destination = _ref_name(invoke.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"))
    assert destination, f"{function}: no on-failure destination for failed asynchronous invocations"
    assert invoke.get("MaximumRetryAttempts") == 2
    assert destination in _alarmed_queues(), f"{function}: nobody hears of events parked in {destination}"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_queue_a_function_reads_redrives_to_an_alarmed_queue(function: str) -> None:
    for name, event in FUNCTIONS[function]["Properties"].get("Events", {}).items():
        if event["Type"] != "SQS":
            continue
        queue = _ref_name(event["Properties"]["Queue"])
        assert queue is not None
        redrive = RESOURCES[queue]["Properties"].get("RedrivePolicy", {})
        target = _ref_name(redrive.get("deadLetterTargetArn"))
        assert target, f"{function}.{name}: {queue} has no dead-letter queue"
        assert target in _alarmed_queues(), f"{function}.{name}: nobody hears of messages parked in {target}"
        assert event["Properties"].get("FunctionResponseTypes") == ["ReportBatchItemFailures"]


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_functions_calling_rate_limited_apis_have_bounded_concurrency(function: str) -> None:
    reserved = FUNCTIONS[function]["Properties"].get("ReservedConcurrentExecutions")
    assert reserved is not None, f"{function}: unbounded concurrency against ECR, Inspector or Slack"
    parameter = _ref_name(reserved["Fn::If"][1]) if isinstance(reserved, dict) and "Fn::If" in reserved else None
    assert parameter is None or int(DOC["Parameters"][parameter]["Default"]) > 0


def test_alarm_notifications_do_not_depend_on_attribute_filters() -> None:
    """CloudWatch alarm notifications carry no message attributes: a filtered subscription never gets them."""
    for name, spec in RESOURCES.items():
        if spec["Type"] == "AWS::SNS::Subscription":
            assert "FilterPolicy" not in spec["Properties"], f"{name} would never receive an alarm"


def test_dead_letter_queues_keep_their_messages_for_two_weeks() -> None:
    for queue in _alarmed_queues():
        assert RESOURCES[queue]["Properties"].get("MessageRetentionPeriod") == 1209600, queue
