"""The run engine's AWS side: the FIFO run queue (one message group per registry), the run's progress in the
audit table (partition `run#<id>`: the summary with its counters, and one marker per finished step), and the
organization's accounts (Organizations ListAccounts, from the management account or a delegated administrator)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ecr_warden.adapters.audit_store import _conditional_failed, deserialize_item, serialize_item
from ecr_warden.adapters.aws import client, error_code
from ecr_warden.runs.model import FAILED_SHOWN, BatchResult, RunStatus, RunStep, RunSummary

KEEP_FOR = timedelta(days=90)  # a run's items expire (the table's TTL) after this
IAM_ACTIONS = frozenset(
    {"sqs:SendMessage", "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"}
)
ROWS_BYTES = 300_000  # a batch's rows, as JSON, kept under DynamoDB's 400 KB item limit
# The registry can't be read at all: no member role there (the member stack isn't deployed), the role's trust or
# permissions refuse, or the region is not enabled for the account. Retrying can't help; the run reports it.
UNREACHABLE = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId",
     "UnauthorizedOperation", "OptInRequired"}
)  # fmt: skip


def unreachable(error: Exception) -> str | None:
    code = error_code(error)
    if code not in UNREACHABLE:
        return None
    message = str((getattr(error, "response", None) or {}).get("Error", {}).get("Message", ""))[:300]
    return f"{code}: {message}" if message else code


@dataclass
class SqsRunQueue:
    queue_url: str
    _client: Any = field(default=None)

    def send(self, steps: Sequence[RunStep]) -> None:
        sqs = self._client or client("sqs")
        for start in range(0, len(steps), 10):  # SendMessageBatch: at most 10 entries
            entries = []
            for n, step in enumerate(steps[start : start + 10]):
                body = step.model_dump_json(exclude_defaults=True)
                entries.append({
                    "Id": str(n),
                    "MessageBody": body,
                    "MessageGroupId": step.group,
                    # a step sent twice (a retried list step) within SQS's 5-minute window is queued once
                    "MessageDeduplicationId": hashlib.sha256(body.encode()).hexdigest(),
                })  # fmt: skip
            failed = sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries).get("Failed") or []
            if failed:
                raise RuntimeError(f"{len(failed)} run step(s) not queued: {failed[0].get('Code')}")


@dataclass
class DynamoRunProgress:
    table_name: str
    _client: Any = field(default=None)
    now: Any = field(default=lambda: datetime.now(UTC))

    @property
    def dynamodb(self) -> Any:
        return self._client or client("dynamodb")

    def _key(self, run_id: str, sort: str) -> dict[str, Any]:
        return {"pk": {"S": f"run#{run_id}"}, "digest": {"S": sort}}

    def _expires(self) -> int:
        return int((self.now() + KEEP_FOR).timestamp())

    def create(self, summary: RunSummary) -> bool:
        item = serialize_item({
            "job": summary.job, "by": summary.by, "reason": summary.reason, "started_at": summary.started_at,
            "scopes": list(summary.scopes), "counts": {}, "expires_at": self._expires(),
        })  # fmt: skip
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item={**self._key(summary.run_id, "summary"), **item},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except Exception as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def counted(self, run_id: str, key: str) -> bool:
        found = self.dynamodb.get_item(
            TableName=self.table_name, Key=self._key(run_id, key), ConsistentRead=True, ProjectionExpression="pk"
        )
        return "Item" in found

    def _count(self, step: RunStep, marker: dict[str, Any], update: str, names: dict[str, str],
               values: dict[str, Any]) -> bool:  # fmt: skip
        """The step's marker and the counters it adds, together or not at all (a redelivery finds the marker)."""
        put = {
            "TableName": self.table_name,
            "Item": {**self._key(step.run_id, step.key), **serialize_item({**marker, "expires_at": self._expires()})},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        counters = {
            "TableName": self.table_name,
            "Key": self._key(step.run_id, "summary"),
            "UpdateExpression": update,
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": serialize_item(values),
        }
        if names:
            counters["ExpressionAttributeNames"] = names
        try:
            self.dynamodb.transact_write_items(TransactItems=[{"Put": put}, {"Update": counters}])
        except Exception as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def listed(self, step: RunStep, batches: int, repositories: int, last: bool) -> bool:
        update = "ADD batches_queued :b, repositories_listed :r, pages_listed :one" + (", scopes_listed :one" * last)
        return self._count(step, {"listed": repositories, "batches": batches, "last": last}, update, {},
                           {":b": batches, ":r": repositories, ":one": 1})  # fmt: skip

    def failed(self, step: RunStep, why: str) -> bool:
        """Counted in the summary; the reason stays with the step's marker (5,000 reasons would outgrow an item)."""
        return self._count(step, {"failed": why, "scope": step.group}, "ADD scopes_failed :one", {}, {":one": 1})

    def finished(self, step: RunStep, result: BatchResult) -> bool:
        names = {f"#c{n}": kind for n, kind in enumerate(sorted(result.counts))}
        values: dict[str, Any] = {":one": 1, ":r": len(step.repositories), ":w": result.repositories, ":zero": 0}
        sets = []
        for n, kind in enumerate(sorted(result.counts)):
            values[f":c{n}"] = result.counts[kind]
            sets.append(f"counts.#c{n} = if_not_exists(counts.#c{n}, :zero) + :c{n}")
        update = "ADD batches_done :one, repositories_done :r, repositories_worked :w"
        if sets:
            update += " SET " + ", ".join(sets)
        else:
            values.pop(":zero")
        return self._count(step, {"rows": _bounded_rows(result.rows), "repositories": step.repositories}, update,
                           names, values)  # fmt: skip

    def status(self, run_id: str) -> RunStatus | None:
        found = self.dynamodb.get_item(TableName=self.table_name, Key=self._key(run_id, "summary"),
                                       ConsistentRead=True).get("Item")  # fmt: skip
        if found is None:
            return None
        item = deserialize_item(found)
        summary = RunSummary(run_id, item["job"], item["by"], item.get("reason"), item["started_at"],
                             tuple(item.get("scopes") or ()))  # fmt: skip
        counters = {k: int(v) for k, v in item.items() if k in _COUNTERS}
        counts = {str(k): int(v) for k, v in (item.get("counts") or {}).items()}
        failed = self._failed(run_id) if counters.get("scopes_failed") else {}
        return RunStatus(summary, counters, counts, failed)

    def _failed(self, run_id: str) -> dict[str, str]:
        found: dict[str, str] = {}
        pages = self.dynamodb.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(digest, :page)",
            FilterExpression="attribute_exists(failed)",
            ExpressionAttributeValues={":pk": {"S": f"run#{run_id}"}, ":page": {"S": "page#"}},
        )
        for page in pages:
            for item in page.get("Items", []):
                marker = deserialize_item(item)
                found[str(marker["scope"])] = str(marker["failed"])
                if len(found) >= FAILED_SHOWN:
                    return found
        return found

    def rows(self, run_id: str, limit: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        paginator = self.dynamodb.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(digest, :batch)",
            ExpressionAttributeValues={":pk": {"S": f"run#{run_id}"}, ":batch": {"S": "batch#"}},
            ProjectionExpression="#rows",
            ExpressionAttributeNames={"#rows": "rows"},
        )
        for page in pages:
            for item in page.get("Items", []):
                found.extend(json.loads(deserialize_item(item).get("rows") or "[]"))
                if len(found) >= limit:
                    return found[:limit]
        return found


_COUNTERS = frozenset({"batches_queued", "batches_done", "repositories_listed", "repositories_done",
                       "repositories_worked", "pages_listed", "scopes_listed", "scopes_failed"})  # fmt: skip


def _bounded_rows(rows: list[dict[str, Any]]) -> str:
    """The rows as JSON, halved until they fit; a last row says how many were left out."""
    kept = list(rows)
    text = json.dumps(kept, default=str)
    while len(text) > ROWS_BYTES and kept:
        kept = kept[: len(kept) // 2]
        text = json.dumps([*kept, {"omitted": len(rows) - len(kept)}], default=str)
    return text
