"""EventBridge: announce decisions on ecr-warden's bus."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ecr_warden.adapters.aws import client
from ecr_warden.contracts.decision import DECISION_DETAIL_TYPE, DECISION_SOURCE, DecisionDetail
from ecr_warden.errors import WardenError

IAM_ACTIONS = frozenset({"events:PutEvents"})
# PutEvents rejects an entry over 256 KiB (detail, detail-type, source and resources counted); keep room for the rest.
MAX_DETAIL_BYTES = 256 * 1024 - 4 * 1024
# The lists that grow with what a pusher controls (how many tags an image has), longest first when trimming.
_TRIMMABLE = ("tags", "not_restored", "top_findings", "settings_changes", "exempted")


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
                    "Detail": fitted_json(detail),
                    "EventBusName": self.bus_name,
                    "Resources": [f"arn:aws:ecr:{detail.region}:{detail.account}:repository/{detail.repository}"],
                }
            ]
        )
        if response.get("FailedEntryCount"):
            entry = response["Entries"][0]
            raise AnnounceError(f"decision event rejected: {entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")


def fitted_json(detail: DecisionDetail, limit: int = MAX_DETAIL_BYTES) -> str:
    """The decision as the event's detail, within EventBridge's entry size: an image with a thousand long tags
    must still be announced. Lists are halved (the longest first) until it fits, and a reason says what was left
    out; the audit record keeps everything."""
    body = detail.model_dump_json(exclude_none=True)
    if len(body.encode()) <= limit:
        return body
    kept: dict[str, Any] = {name: getattr(detail, name) for name in _TRIMMABLE}
    omitted: dict[str, int] = {}
    while len(body.encode()) > limit:
        name = max(_TRIMMABLE, key=lambda n: len(json.dumps(kept[n], default=str)))
        values = kept[name]
        if not values:
            raise AnnounceError(f"decision for {detail.repository} exceeds {limit} bytes even without its lists")
        half = len(values) // 2
        omitted[name] = omitted.get(name, 0) + len(values) - half
        kept[name] = dict(list(values.items())[:half]) if isinstance(values, dict) else values[:half]
        note = "; ".join(f"{count} more {name.replace('_', ' ')}" for name, count in omitted.items())
        reasons = [*detail.reasons, f"left out to fit EventBridge's 256 KB: {note} (the audit record has them all)"]
        body = detail.model_copy(update={**kept, "reasons": reasons}).model_dump_json(exclude_none=True)
    return body
