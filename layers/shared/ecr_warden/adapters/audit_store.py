"""DynamoDB: the audit table, one item per image, written with optimistic concurrency."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from ecr_warden.adapters.aws import client, error_code
from ecr_warden.errors import WardenError
from ecr_warden.gate.records import HistoryEntry, ImageRecord, ImageStatus

IAM_ACTIONS = frozenset({"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"})
# A clean result may be written without reading first while the image is in none of the states below.
_QUIET_STATUSES = [ImageStatus.PASSED, ImageStatus.PENDING, ImageStatus.SKIPPED, ImageStatus.SCAN_FAILED]


class ConcurrentUpdateError(WardenError):
    """Someone else wrote the record since it was read: read again and re-decide."""


def _to_dynamo(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str), parse_float=Decimal)


def _from_dynamo(value: Any) -> Any:
    def default(obj: Any) -> Any:
        if isinstance(obj, Decimal):
            return int(obj) if obj == obj.to_integral_value() else float(obj)
        if isinstance(obj, set):
            return sorted(obj)
        raise TypeError(type(obj))

    return json.loads(json.dumps(value, default=default))


@dataclass
class DynamoAuditStore:
    table_name: str
    _client: Any = field(default=None)

    @property
    def dynamodb(self) -> Any:
        return self._client or client("dynamodb")

    @staticmethod
    def _serialize(data: dict[str, Any]) -> dict[str, Any]:
        from boto3.dynamodb.types import TypeSerializer

        serializer = TypeSerializer()
        return {key: serializer.serialize(value) for key, value in _to_dynamo(data).items()}

    @staticmethod
    def _deserialize(item: dict[str, Any]) -> dict[str, Any]:
        from boto3.dynamodb.types import TypeDeserializer

        deserializer = TypeDeserializer()
        result: dict[str, Any] = _from_dynamo({k: deserializer.deserialize(v) for k, v in item.items()})
        return result

    def get(self, repository: str, digest: str) -> ImageRecord | None:
        response = self.dynamodb.get_item(
            TableName=self.table_name,
            ConsistentRead=True,
            Key={"repository": {"S": repository}, "digest": {"S": digest}},
        )
        item = response.get("Item")
        return ImageRecord.model_validate(self._deserialize(item)) if item else None

    def save(self, record: ImageRecord, expected_version: int) -> ImageRecord:
        """Write the whole record if nobody else wrote it since `expected_version` was read."""
        updated = record.model_copy(update={"version": expected_version + 1})
        condition = "attribute_not_exists(repository)" if expected_version == 0 else "version = :expected"
        values = {} if expected_version == 0 else {":expected": {"N": str(expected_version)}}
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item=self._serialize(updated.model_dump(mode="json", exclude_none=True)),
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ConcurrentUpdateError(f"{record.repository}@{record.digest} changed concurrently") from exc
            raise
        return updated

    def record_pass(
        self,
        repository: str,
        digest: str,
        fingerprint: str,
        counts: dict[str, int],
        rule: str | None,
        entry: HistoryEntry,
        tags: list[str],
        now: datetime,
    ) -> str | None:
        """One conditional upsert for a clean result. Returns the previous status ('' when new), or None when
        the condition failed (already recorded with this fingerprint, or in a state that needs a full read)."""
        try:
            response = self.dynamodb.update_item(
                TableName=self.table_name,
                Key={"repository": {"S": repository}, "digest": {"S": digest}},
                UpdateExpression=(
                    "SET #s = :passed, verdict = :pass, fingerprint = :fp, severity_counts = :counts, "
                    "updated_at = :now, original_tags = :tags, top_findings = :empty, findings_total = :zero, "
                    "history = list_append(if_not_exists(history, :empty), :entry), "
                    "version = if_not_exists(version, :zero) + :one" + (", #r = :rule" if rule else "")
                ),
                ConditionExpression=(
                    "attribute_not_exists(repository) OR "
                    "(#s IN (:q0, :q1, :q2, :q3) AND (attribute_not_exists(fingerprint) OR fingerprint <> :fp))"
                ),
                ExpressionAttributeNames={"#s": "status", **({"#r": "rule"} if rule else {})},
                ExpressionAttributeValues=self._serialize(
                    {
                        ":passed": ImageStatus.PASSED.value,
                        ":pass": "PASS",
                        ":fp": fingerprint,
                        ":counts": counts,
                        ":now": now.isoformat().replace("+00:00", "Z"),
                        ":tags": tags,
                        ":empty": [],
                        ":zero": 0,
                        ":one": 1,
                        ":entry": [entry.model_dump(mode="json", exclude_none=True)],
                        **({":rule": rule} if rule else {}),
                        **{f":q{i}": status.value for i, status in enumerate(_QUIET_STATUSES)},
                    }
                ),
                ReturnValues="UPDATED_OLD",
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        old = response.get("Attributes", {}).get("status", {}).get("S")
        return old or ""

    def link_child(self, repository: str, child: str, index_digest: str, now: datetime) -> None:
        """Remember that a per-platform manifest belongs to an index (creates a PENDING record if needed)."""
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key={"repository": {"S": repository}, "digest": {"S": child}},
                UpdateExpression=(
                    "SET index_digests = list_append(if_not_exists(index_digests, :empty), :index), "
                    "#s = if_not_exists(#s, :pending), updated_at = :now, "
                    "version = if_not_exists(version, :zero) + :one"
                ),
                ConditionExpression="attribute_not_exists(index_digests) OR NOT contains(index_digests, :digest)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=self._serialize(
                    {
                        ":empty": [],
                        ":index": [index_digest],
                        ":pending": ImageStatus.PENDING.value,
                        ":now": now.isoformat().replace("+00:00", "Z"),
                        ":zero": 0,
                        ":one": 1,
                        ":digest": index_digest,
                    }
                ),
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":  # already linked
                raise
