"""EventBridge: announce decisions on ecr-warden's bus."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ecr_warden.adapters.aws import client
from ecr_warden.contracts.decision import DECISION_DETAIL_TYPE, DECISION_SOURCE, DecisionDetail
from ecr_warden.errors import WardenError

IAM_ACTIONS = frozenset({"events:PutEvents"})


class AnnounceError(WardenError):
    pass


@dataclass
class EventBridgeAnnouncer:
    bus_name: str
    _client: Any = field(default=None)

    def publish(self, detail: DecisionDetail) -> None:
        events = self._client or client("events")
        response = events.put_events(
            Entries=[
                {
                    "Source": DECISION_SOURCE,
                    "DetailType": DECISION_DETAIL_TYPE,
                    "Detail": detail.model_dump_json(exclude_none=True),
                    "EventBusName": self.bus_name,
                    "Resources": [f"arn:aws:ecr:{detail.region}:{detail.account}:repository/{detail.repository}"],
                }
            ]
        )
        if response.get("FailedEntryCount"):
            entry = response["Entries"][0]
            raise AnnounceError(f"decision event rejected: {entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")
