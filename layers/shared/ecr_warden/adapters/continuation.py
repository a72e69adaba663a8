"""The admin function continues a long run (the scheduled sweep of a large registry) in a new asynchronous
invocation of itself, with the next_token the last one answered: each invocation stays within Lambda's limits and
does at least one repository, so the chain ends."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ecr_warden.adapters.aws import client

IAM_ACTIONS = frozenset({"lambda:InvokeFunction"})  # on the admin function itself only (template.yaml)


@dataclass
class LambdaContinuation:
    function_name: str
    _client: Any = field(default=None)

    @property
    def awslambda(self) -> Any:
        return self._client or client("lambda")

    def send(self, payload: dict[str, Any]) -> None:
        self.awslambda.invoke(
            FunctionName=self.function_name, InvocationType="Event", Payload=json.dumps(payload).encode()
        )
