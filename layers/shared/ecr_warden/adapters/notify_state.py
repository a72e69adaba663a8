"""DynamoDB: what was notified per image (dedupe, follow-up windows) and per-webhook send slots."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecr_warden.adapters.aws import client
from ecr_warden.adapters.dynamodb_items import conditional_failed

IAM_ACTIONS = frozenset({"dynamodb:GetItem", "dynamodb:UpdateItem"})
RETENTION_SECONDS = 30 * 24 * 3600


@dataclass
class DynamoNotifyState:
    table_name: str
    _client: Any = field(default=None)

    @property
    def dynamodb(self) -> Any:
        return self._client or client("dynamodb")

    def _key(self, key: str) -> dict[str, Any]:
        return {"key": {"S": key}}

    def claim(self, image: str, notification: str, now: datetime) -> bool:
        """Remember a notification for an image; False if it was claimed before (duplicate decision event)."""
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key=self._key(f"image#{image}"),
                UpdateExpression="ADD sent :n SET expires_at = :ttl",
                ConditionExpression="attribute_not_exists(sent) OR NOT contains(sent, :one)",
                ExpressionAttributeValues={
                    ":n": {"SS": [notification]},
                    ":one": {"S": notification},
                    ":ttl": {"N": str(int(now.timestamp()) + RETENTION_SECONDS)},
                },
            )
        except Exception as exc:
            if conditional_failed(exc):
                return False
            raise
        return True

    def unclaim(self, image: str, notification: str) -> None:
        """Undo a claim whose delivery failed, so the retry of the event sends it."""
        self.dynamodb.update_item(
            TableName=self.table_name,
            Key=self._key(f"image#{image}"),
            UpdateExpression="DELETE sent :n",
            ExpressionAttributeValues={":n": {"SS": [notification]}},
        )

    def restore_pending(self, image: str, summaries: list[str], latest: str) -> None:
        """Put taken follow-ups back (their delivery failed) ahead of any that arrived since."""
        self.dynamodb.update_item(
            TableName=self.table_name,
            Key=self._key(f"image#{image}"),
            UpdateExpression=(
                "SET pending = list_append(:taken, if_not_exists(pending, :empty)), "
                "latest = if_not_exists(latest, :latest), flush_scheduled = :yes"
            ),
            ExpressionAttributeValues={
                ":taken": {"L": [{"S": item} for item in summaries]},
                ":empty": {"L": []},
                ":latest": {"S": latest},
                ":yes": {"BOOL": True},
            },
        )

    def open_window(self, image: str, until: datetime) -> None:
        self.dynamodb.update_item(
            TableName=self.table_name,
            Key=self._key(f"image#{image}"),
            UpdateExpression="SET window_until = :until",
            ExpressionAttributeValues={":until": {"N": str(until.timestamp())}},
        )

    def add_pending(self, image: str, summary: str, latest: str, now: datetime) -> tuple[bool, float] | None:
        """Queue a follow-up inside an open window. None when no window is open. Otherwise (whether a flush was
        already scheduled, when the window ends)."""
        try:
            response = self.dynamodb.update_item(
                TableName=self.table_name,
                Key=self._key(f"image#{image}"),
                UpdateExpression=(
                    "SET pending = list_append(if_not_exists(pending, :empty), :summary), "
                    "latest = :latest, flush_scheduled = :yes"
                ),
                ConditionExpression="window_until > :now",
                ExpressionAttributeValues={
                    ":empty": {"L": []},
                    ":summary": {"L": [{"S": summary}]},
                    ":latest": {"S": latest},
                    ":yes": {"BOOL": True},
                    ":now": {"N": str(now.timestamp())},
                },
                ReturnValues="ALL_OLD",
            )
        except Exception as exc:
            if conditional_failed(exc):
                return None
            raise
        old = response.get("Attributes", {})
        return bool(old.get("flush_scheduled", {}).get("BOOL")), float(old["window_until"]["N"])

    def take_pending(self, image: str) -> tuple[list[str], str | None]:
        """Atomically take the queued follow-ups (and the latest decision) and reset the flush flag."""
        response = self.dynamodb.update_item(
            TableName=self.table_name,
            Key=self._key(f"image#{image}"),
            UpdateExpression="REMOVE pending, latest SET flush_scheduled = :no",
            ExpressionAttributeValues={":no": {"BOOL": False}},
            ReturnValues="ALL_OLD",
        )
        old = response.get("Attributes", {})
        return [item["S"] for item in old.get("pending", {}).get("L", [])], old.get("latest", {}).get("S")

    def unschedule(self, image: str) -> None:
        """The flush add_pending flagged as scheduled could not be sent: the next update (or this one's retry)
        schedules it."""
        self.dynamodb.update_item(
            TableName=self.table_name,
            Key=self._key(f"image#{image}"),
            UpdateExpression="SET flush_scheduled = :no",
            ExpressionAttributeValues={":no": {"BOOL": False}},
        )

    def reserve_slot(self, webhook: str, interval: float) -> float:
        """Reserve the next send slot for a webhook across all concurrent invocations: the time (epoch seconds)
        the send may start. The caller measures its wait against the clock after this returns."""
        key = self._key(f"rate#{webhook}")
        while True:
            item = self.dynamodb.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")
            previous = float(item["next_at"]["N"]) if item else None
            now = time.time()
            slot = max(now, previous or 0.0)
            condition = "attribute_not_exists(next_at)" if previous is None else "next_at = :previous"
            values = {":next": {"N": repr(slot + interval)}}
            if previous is not None:
                values[":previous"] = item["next_at"]
            try:
                self.dynamodb.update_item(
                    TableName=self.table_name,
                    Key=key,
                    UpdateExpression="SET next_at = :next",
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
            except Exception as exc:
                if conditional_failed(exc):
                    continue  # another sender took this slot: take the next one
                raise
            return slot
