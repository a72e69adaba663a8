"""SQS: park events that retrying cannot fix, with the reason, ready for inspection and redrive."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ecr_warden.adapters.aws import client

IAM_ACTIONS = frozenset({"sqs:SendMessage"})


@dataclass
class SqsDeadLetter:
    queue_url: str
    _client: Any = field(default=None)

    def send(self, event: Any, error: Exception, function_name: str) -> None:
        body = {
            "error_type": type(error).__name__,
            "error": str(error),
            "function": function_name,
            "event": event,
        }
        (self._client or client("sqs")).send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps(body, default=str),
            MessageAttributes={"error_type": {"DataType": "String", "StringValue": type(error).__name__}},
        )
