"""SQS: a delayed message that flushes an image's aggregated follow-ups when its window closes."""

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

    def schedule(self, repository: str, digest: str, delay_seconds: float) -> None:
        (self._client or client("sqs")).send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps({"repository": repository, "digest": digest}),
            DelaySeconds=min(MAX_DELAY_SECONDS, max(0, math.ceil(delay_seconds))),
        )
