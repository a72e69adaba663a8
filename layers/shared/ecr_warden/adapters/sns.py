"""SNS: one topic for all decisions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ecr_warden.adapters.aws import client

IAM_ACTIONS = frozenset({"sns:Publish", "kms:Decrypt", "kms:GenerateDataKey"})  # the topic is KMS-encrypted


@dataclass
class SnsPublisher:
    topic_arn: str
    _client: Any = field(default=None)

    def publish(self, subject: str, document: dict[str, Any], attributes: dict[str, dict[str, str]]) -> None:
        (self._client or client("sns")).publish(
            TopicArn=self.topic_arn,
            Subject=subject,
            Message=json.dumps(document, default=str),
            MessageAttributes=attributes,
        )
