"""What a schedule of the template delivers when it fires: the local stack never fires one on a timer, only when
asked (`LocalStack.fire_schedule`, `ecr-warden schedule fire NAME`), and then delivers what AWS would.

- A `ScheduleV2` / `AWS::Scheduler::Schedule` (EventBridge Scheduler) invokes a Lambda target asynchronously with
  the target's `Input` as the payload, or `{}` without one; an SQS target gets the input as the message body. The
  context attributes (`<aws.scheduler.execution-id>`, `<aws.scheduler.scheduled-time>`,
  `<aws.scheduler.schedule-arn>`, `<aws.scheduler.attempt-number>`) in the input are replaced, as Scheduler does.
- A `Schedule` (an EventBridge rule) invokes the function asynchronously with its `Input`, or with the
  `Scheduled Event` EventBridge sends.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from ecr_warden_tools.local.provision import ScheduleSpec


class ScheduleError(LookupError):
    """No such schedule, or one whose target the local stack cannot deliver to."""


def scheduler_context(schedule: ScheduleSpec, region: str, account_id: str) -> dict[str, str]:
    """The context attributes EventBridge Scheduler substitutes in a target's input, for this run."""
    arn = f"arn:aws:scheduler:{region}:{account_id}:schedule/{schedule.group}/{schedule.name}"
    return {
        "<aws.scheduler.schedule-arn>": arn,
        "<aws.scheduler.scheduled-time>": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.execution-id>": str(uuid.uuid4()),
        "<aws.scheduler.attempt-number>": "1",
    }


def schedule_payload(schedule: ScheduleSpec, region: str, account_id: str) -> Any:
    if schedule.input is not None:
        text = schedule.input
        if schedule.kind == "ScheduleV2":
            for attribute, value in scheduler_context(schedule, region, account_id).items():
                text = text.replace(attribute, value)
        try:
            return json.loads(text)
        except ValueError:
            return text  # a text input reaches the target as it is
    if schedule.kind == "ScheduleV2":
        return {}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account_id}:rule/{schedule.name}"],
        "detail": {},
    }


def describe(schedule: ScheduleSpec) -> dict[str, Any]:
    """A schedule as `ecr-warden schedule list` shows it."""
    return {
        "name": schedule.name,
        "kind": schedule.kind,
        "expression": schedule.expression,
        "state": "ENABLED" if schedule.enabled else "DISABLED",
        "group": schedule.group,
        "target": schedule.function or schedule.target_arn,
        "input": schedule.input,
    }


def find(schedules: dict[str, ScheduleSpec], name: str) -> ScheduleSpec:
    schedule = schedules.get(name)
    if schedule is None:
        known = ", ".join(sorted(schedules)) or "none"
        raise ScheduleError(f"no schedule named {name!r} in the template (schedules: {known})")
    return schedule
