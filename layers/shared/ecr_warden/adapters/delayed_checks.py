"""SQS: the gate's delayed checks (findings that lag their scan, images never scanned)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ecr_warden.adapters.aws import client
from ecr_warden.contracts.checks import FindingsCheck, UnscannedCheck, due_in

IAM_ACTIONS = frozenset({"sqs:SendMessage"})
MAX_DELAY_SECONDS = 900  # SQS's limit; a check due later is sent on again when it arrives early


@dataclass
class SqsDelayedChecks:
    queue_url: str
    _client: Any = field(default=None)

    def schedule(self, check: FindingsCheck | UnscannedCheck) -> None:
        delay = min(MAX_DELAY_SECONDS, math.ceil(due_in(check, datetime.now(UTC))))
        (self._client or client("sqs")).send_message(
            QueueUrl=self.queue_url, MessageBody=check.model_dump_json(), DelaySeconds=delay
        )
