"""The EventBridge envelope every consumed event shares (AWS's and ecr-warden's own decision events).

The same fields and aliases as Powertools' `EventBridgeModel`, without importing Powertools' parser package for
one base class (6-8 ms of a cold start with bytecode, 17-23 ms without: docs/PERFORMANCE.md). Each event's
model narrows `source`, `detail-type` and `detail`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventBridgeModel(BaseModel):
    # defer_build: only the event models a function receives are built, at their first event (docs/PERFORMANCE.md)
    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    version: str  # "0" in every event so far
    id: str
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail_type: str = Field(alias="detail-type")
    detail: Any
    replay_name: str | None = Field(None, alias="replay-name")  # set when the event comes from an archive replay
