"""The run engine's AWS side: the FIFO run queue (one message group per registry), the run's progress in the
audit table (partition `run#<id>`: the summary with its counters, and one marker per finished step), and the
organization's accounts (Organizations ListAccounts, from the management account or a delegated administrator)."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ecr_warden.adapters.aws import client, error_code
from ecr_warden.adapters.dynamodb_items import conditional_failed, deserialize_item, serialize_item
from ecr_warden.runs.model import (
    FAILED_SHOWN,
    BatchResult,
    Job,
    PagePlan,
    RunStatus,
    RunStep,
    RunSummary,
    scopes_digest,
)
from ecr_warden.runs.service import StepRejected

KEEP_FOR = timedelta(days=90)  # a run's items expire (the table's TTL) after this
IAM_ACTIONS = frozenset(
    {"sqs:SendMessage", "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"}
)
# a transaction cancelled for these is tried again (botocore doesn't): another step's count on the summary, throttling
RETRIED = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
TRANSACT_ATTEMPTS = 5
BACKOFF_SECONDS = 0.1  # doubled each attempt, jittered: at most 1.5 s in all
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
    sleep: Callable[[float], None] = time.sleep

    @property
    def dynamodb(self) -> Any:
        return self._client or client("dynamodb")

    def _key(self, run_id: str, sort: str) -> dict[str, Any]:
        return {"pk": {"S": f"run#{run_id}"}, "digest": {"S": sort}}

    def _expires(self) -> int:
        return int((self.now() + KEEP_FOR).timestamp())

    def _stamp(self) -> str:
        return str(self.now().astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"))

    def create(self, summary: RunSummary) -> bool:
        # small on purpose: every step's count writes this item (WCUs are per KB written), so no scope list in it
        item = serialize_item({
            "job": summary.job, "by": summary.by, "reason": summary.reason, "started_at": summary.started_at,
            "scopes_total": summary.scopes_total, "scopes_digest": summary.scopes_digest, "counts": {},
            "updated_at": self._stamp(), "expires_at": self._expires(),
        })  # fmt: skip
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item={**self._key(summary.run_id, "summary"), **item},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except Exception as exc:
            if conditional_failed(exc):
                return False
            raise
        return True

    def abort(self, run_id: str, why: str | None) -> None:
        update = "SET aborted = :why, updated_at = :now" if why else "REMOVE aborted SET updated_at = :now"
        values = serialize_item({":now": self._stamp(), **({":why": why} if why else {})})
        self.dynamodb.update_item(TableName=self.table_name, Key=self._key(run_id, "summary"),
                                  UpdateExpression=update, ExpressionAttributeValues=values)  # fmt: skip

    def lookup(self, run_id: str, key: str) -> tuple[Job | None, bool]:
        summary = self.dynamodb.get_item(TableName=self.table_name, Key=self._key(run_id, "summary"),
                                         ConsistentRead=True, ProjectionExpression="#job",
                                         ExpressionAttributeNames={"#job": "job"}).get("Item")  # fmt: skip
        if summary is None:
            return None, False
        marker = self.dynamodb.get_item(
            TableName=self.table_name, Key=self._key(run_id, key), ConsistentRead=True, ProjectionExpression="pk"
        )
        return deserialize_item(summary)["job"], "Item" in marker

    def stored_plan(self, step: RunStep) -> PagePlan | None:
        found = self.dynamodb.get_item(TableName=self.table_name, Key=self._key(step.run_id, step.plan_key),
                                       ConsistentRead=True).get("Item")  # fmt: skip
        if found is None:
            return None
        item = deserialize_item(found)
        return PagePlan(tuple(json.loads(item["names"])), item.get("next_token"))

    def plan(self, step: RunStep, plan: PagePlan) -> PagePlan:
        """Stored with its batches counted queued (one transaction), before any is sent: the run can't look done
        while a batch of this page is pending, even if the list step itself is never counted."""
        item = {"names": json.dumps(list(plan.names)), "next_token": plan.next_token, "expires_at": self._expires()}
        put = {
            "TableName": self.table_name,
            "Item": {**self._key(step.run_id, step.plan_key), **serialize_item(item)},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        adds = {"batches_queued": len(step.batches(plan.names)), "repositories_listed": len(plan.names)}
        if self._transact(step, [{"Put": put}, self._counters(step.run_id, adds)]):
            return plan
        stored = self.stored_plan(step)  # listed before: that plan, not this one
        assert stored is not None
        return stored

    def _counters(self, run_id: str, adds: dict[str, int], sets: Sequence[str] = (),
                  names: dict[str, str] | None = None, values: dict[str, Any] | None = None
                  ) -> dict[str, Any]:  # fmt: skip
        """The summary's update: counters added, `updated_at` set; refused if the summary is gone."""
        values = {**(values or {}), ":now": self._stamp()}
        added = []
        for n, (counter, value) in enumerate(adds.items()):
            values[f":a{n}"] = value
            added.append(f"{counter} :a{n}")
        update = "SET " + ", ".join(["updated_at = :now", *sets]) + (" ADD " + ", ".join(added) if added else "")
        counters = {
            "TableName": self.table_name,
            "Key": self._key(run_id, "summary"),
            "UpdateExpression": update,
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": serialize_item(values),
        }
        if names:
            counters["ExpressionAttributeNames"] = names
        return {"Update": counters}

    def _transact(self, step: RunStep, items: list[dict[str, Any]]) -> bool:
        """Write `items` (the first one conditional, then the summary's update) together. False: the first one's
        condition failed (written before). TransactWriteItems' conflicts and throttling are not retried by
        botocore: they are here, with jittered backoff, a few times."""
        for attempt in range(TRANSACT_ATTEMPTS):
            try:
                self.dynamodb.transact_write_items(TransactItems=items)
                return True
            except Exception as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = (getattr(exc, "response", None) or {}).get("CancellationReasons") or []
                codes = [str(r.get("Code") or "None") for r in reasons]
                if codes[:1] == ["ConditionalCheckFailed"]:
                    return False
                if "ConditionalCheckFailed" in codes:
                    raise StepRejected(f"no run {step.run_id} (its summary is gone): {step.key} not counted") from exc
                if not RETRIED & set(codes) or attempt == TRANSACT_ATTEMPTS - 1:
                    raise
            self.sleep(random.uniform(0, BACKOFF_SECONDS * 2**attempt))  # noqa: S311 - jitter, not a secret
        raise AssertionError("unreachable")  # pragma: no cover

    def _count(self, step: RunStep, marker: dict[str, Any], adds: dict[str, int], sets: Sequence[str] = (),
               names: dict[str, str] | None = None, values: dict[str, Any] | None = None) -> bool:  # fmt: skip
        """The step's marker and the counters it adds, together or not at all (a redelivery finds the marker)."""
        put = {
            "TableName": self.table_name,
            "Item": {**self._key(step.run_id, step.key), **serialize_item({**marker, "expires_at": self._expires()})},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        return self._transact(step, [{"Put": put}, self._counters(step.run_id, adds, sets, names, values)])

    def listed(self, step: RunStep, last: bool) -> bool:
        """The page's batches and names were counted with its plan: this counts the page (the last: its registry)."""
        return self._count(step, {"last": last}, {"pages_listed": 1, **({"scopes_listed": 1} if last else {})})

    def failed(self, step: RunStep, why: str) -> bool:
        """Counted in the summary; the reason stays with the step's marker (5,000 reasons would outgrow an item)."""
        return self._count(step, {"failed": why, "scope": step.group}, {"scopes_failed": 1})

    def finished(self, step: RunStep, result: BatchResult) -> bool:
        names = {f"#c{n}": kind for n, kind in enumerate(sorted(result.counts))}
        values: dict[str, Any] = {f":c{n}": result.counts[kind] for n, kind in enumerate(sorted(result.counts))}
        sets = [f"counts.#c{n} = if_not_exists(counts.#c{n}, :zero) + :c{n}" for n in range(len(names))]
        if sets:
            values[":zero"] = 0
        adds = {
            "batches_done": 1,
            "repositories_done": len(step.repositories),
            "repositories_worked": result.repositories,
        }
        return self._count(step, {"rows": _bounded_rows(result.rows), "repositories": step.repositories}, adds, sets,
                           names, values)  # fmt: skip

    def status(self, run_id: str) -> RunStatus | None:
        found = self.dynamodb.get_item(TableName=self.table_name, Key=self._key(run_id, "summary"),
                                       ConsistentRead=True).get("Item")  # fmt: skip
        if found is None:
            return None
        item = deserialize_item(found)
        scopes = [str(s) for s in item.get("scopes") or ()]  # a run started before the summary was made small
        summary = RunSummary(run_id, item["job"], item["by"], item.get("reason"), item["started_at"],
                             int(item.get("scopes_total", len(scopes))),
                             str(item.get("scopes_digest") or scopes_digest(scopes)))  # fmt: skip
        counters = {k: int(v) for k, v in item.items() if k in _COUNTERS}
        counts = {str(k): int(v) for k, v in (item.get("counts") or {}).items()}
        failed = self._failed(run_id) if counters.get("scopes_failed") else {}
        return RunStatus(summary, counters, counts, failed, item.get("updated_at"), item.get("aborted"))

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
