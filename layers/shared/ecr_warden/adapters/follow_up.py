"""SQS: delayed work for the notifier: flush an image's follow-ups when its window closes, or send a Slack
message at the send slot it reserved."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ecr_warden.adapters.aws import client

IAM_ACTIONS = frozenset({"sqs:SendMessage"})
MAX_DELAY_SECONDS = 900  # SQS's limit


@dataclass
class SqsFollowUps:
    queue_url: str
    _client: Any = field(default=None)

    def schedule(self, image: str, delay_seconds: float) -> None:
        """Flush an image's queued follow-ups when its window closes (`image`: the notifier's image key)."""
        self._send({"kind": "flush", "image": image}, delay_seconds)

    def defer(self, slack: dict[str, Any], delay_seconds: float) -> None:
        """Send a Slack message at its reserved slot instead of sleeping until then inside an invocation."""
        self._send({"kind": "slack", **slack}, delay_seconds)

    def _send(self, body: dict[str, Any], delay_seconds: float) -> None:
        (self._client or client("sqs")).send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps(body),
            DelaySeconds=min(MAX_DELAY_SECONDS, max(0, math.ceil(delay_seconds))),
        )
