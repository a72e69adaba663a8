"""DynamoDB: the audit table, one item per image, written with optimistic concurrency.

Key: `pk` = "<account>#<region>#<repository>", `digest`; the same repository name in two accounts or regions
never collides. Items written before version 0.2 (keyed by repository + digest in the old table) are copied over
by `ecr-warden migrate-audit` (see the README's "Upgrading")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecr_warden.adapters.aws import client, error_code
from ecr_warden.adapters.dynamodb_items import (
    conditional_failed,
    deserialize_item,
    partition_key,
    serialize_item,
)
from ecr_warden.domain.images import Scope
from ecr_warden.domain.records import HistoryEntry, ImageRecord, ImageStatus
from ecr_warden.errors import ConcurrentUpdateError

# TransactWriteItems is authorised by the actions it contains (PutItem).
IAM_ACTIONS = frozenset({"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"})
# A clean result may be written without reading first while the image is in none of the states below.
_QUIET_STATUSES = [
    ImageStatus.PASSED,
    ImageStatus.PENDING,
    ImageStatus.SKIPPED,
    ImageStatus.SCAN_FAILED,
    ImageStatus.UNSCANNED,
]
_QUIET_PLACEHOLDERS = ", ".join(f":q{i}" for i in range(len(_QUIET_STATUSES)))


def _json_time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


TAG_CLAIM = "tag#"  # sort-key prefix of a tag claim (image digests start with their algorithm, e.g. "sha256:")
MAX_TRANSACTION = 100  # DynamoDB's TransactWriteItems limit


@dataclass
class DynamoAuditStore:
    table_name: str
    scope: Scope
    _client: Any = field(default=None)

    @property
    def dynamodb(self) -> Any:
        return self._client or client("dynamodb")

    _serialize = staticmethod(serialize_item)
    _deserialize = staticmethod(deserialize_item)

    def _key(self, repository: str, digest: str) -> dict[str, Any]:
        return {"pk": {"S": partition_key(self.scope, repository)}, "digest": {"S": digest}}

    def get(self, repository: str, digest: str) -> ImageRecord | None:
        response = self.dynamodb.get_item(
            TableName=self.table_name, ConsistentRead=True, Key=self._key(repository, digest)
        )
        item = response.get("Item")
        return ImageRecord.model_validate(self._deserialize(item)) if item else None

    def save(self, record: ImageRecord, expected_version: int, claims: Sequence[str] = ()) -> ImageRecord:
        """Write the whole record if nobody else wrote it since `expected_version` was read. `claims`: tags
        this image gives up (quarantine), remembered in the same transaction so that a later push of one of them
        onto another image is recognised (see tag_reuse_news)."""
        updated = record.model_copy(
            update={"version": expected_version + 1, "account": self.scope.account, "region": self.scope.region}
        )
        item = {
            "pk": partition_key(self.scope, record.repository),
            **updated.model_dump(mode="json", exclude_none=True),
        }
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": self._serialize(item),
            "ConditionExpression": "attribute_not_exists(pk)" if expected_version == 0 else "version = :expected",
        }
        if expected_version:
            put["ExpressionAttributeValues"] = {":expected": {"N": str(expected_version)}}
        try:
            if claims:
                self._put_with_claims(put, record, list(claims))
            else:
                self.dynamodb.put_item(**put)
        except Exception as exc:
            if conditional_failed(exc):
                raise ConcurrentUpdateError(f"{record.repository}@{record.digest} changed concurrently") from exc
            raise
        return updated

    def _put_with_claims(self, put: dict[str, Any], record: ImageRecord, claims: list[str]) -> None:
        claimed_at = record.updated_at.isoformat().replace("+00:00", "Z")
        items = [
            {"pk": partition_key(self.scope, record.repository), "digest": f"{TAG_CLAIM}{tag}", "holder": record.digest,
             "claimed_at": claimed_at}
            for tag in claims
        ]  # fmt: skip
        first, rest = items[: MAX_TRANSACTION - 1], items[MAX_TRANSACTION - 1 :]
        self.dynamodb.transact_write_items(
            TransactItems=[{"Put": put}]
            + [{"Put": {"TableName": self.table_name, "Item": self._serialize(claim)}} for claim in first]
        )
        for start in range(0, len(rest), MAX_TRANSACTION):  # more than one transaction holds: after the record
            chunk = rest[start : start + MAX_TRANSACTION]
            self.dynamodb.transact_write_items(
                TransactItems=[{"Put": {"TableName": self.table_name, "Item": self._serialize(c)}} for c in chunk]
            )

    def tag_reuse_news(self, repository: str, tag: str, digest: str) -> str | None:
        """A push put `tag` on `digest`: the blocked image that gave this tag up (its claim's holder) when this push
        is news (another digest than the holder, not confirmed announced before), else None. One read; nothing is
        noted until the announcement went out (confirm_tag_reuse), so a run that fails in between is retried."""
        response = self.dynamodb.get_item(
            TableName=self.table_name, Key=self._key(repository, f"{TAG_CLAIM}{tag}"), ConsistentRead=True
        )
        claim = response.get("Item")
        if not claim or "holder" not in claim:
            return None
        holder, reused_by = claim["holder"]["S"], (claim.get("reused_by") or {}).get("S")
        return None if digest in (holder, reused_by) else str(holder)

    def confirm_tag_reuse(self, repository: str, tag: str, holder: str, digest: str) -> None:
        """The reuse of `tag` by `digest` was announced: later deliveries of the push are not news. Only while the
        claim is still `holder`'s (another block may have claimed the tag since)."""
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key=self._key(repository, f"{TAG_CLAIM}{tag}"),
                UpdateExpression="SET reused_by = :digest",
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues={":digest": {"S": digest}, ":holder": {"S": holder}},
            )
        except Exception as exc:
            if not conditional_failed(exc):
                raise

    def record_pass(self, record: ImageRecord, entry: HistoryEntry) -> str | None:
        """One conditional upsert for a clean result (status, verdict, fingerprint, counts, rule, tags and scan time
        from `record`). Returns the previous status ('' when new), or None when the condition failed (already
        recorded with this fingerprint, or in a state that needs a full read: not quiet, waiting for lagging
        findings, or holding a newer scan's result)."""
        rule, tags, counts, fingerprint = record.rule, record.original_tags, record.severity_counts, record.fingerprint
        scanned = _json_time(record.scanned_at) if record.scanned_at else None
        try:
            response = self.dynamodb.update_item(
                TableName=self.table_name,
                Key=self._key(record.repository, record.digest),
                UpdateExpression=(
                    "SET repository = :repository, #account = :account, #region = :region, "
                    "#s = :passed, verdict = :pass, fingerprint = :fp, severity_counts = :counts, "
                    "updated_at = :now, original_tags = :tags, top_findings = :empty, findings_total = :zero, "
                    "history = list_append(if_not_exists(history, :empty), :entry), "
                    "version = if_not_exists(version, :zero) + :one"
                    + (", #r = :rule" if rule else "")
                    + (", scanned_at = :scanned" if scanned else "")
                ),
                # a wait for lagging findings is ended only by a read: the gate must know which scan is newer
                ConditionExpression=(
                    "attribute_not_exists(pk) OR "
                    f"(#s IN ({_QUIET_PLACEHOLDERS}) AND (attribute_not_exists(fingerprint) OR fingerprint <> :fp)"
                    " AND attribute_not_exists(awaiting_findings)"
                    # the stored text is UTC to the second (scan_time), so it sorts as time does
                    + (" AND (attribute_not_exists(scanned_at) OR scanned_at <= :scanned)" if scanned else "")
                    + ")"
                ),
                ExpressionAttributeNames={
                    "#s": "status",
                    "#account": "account",
                    "#region": "region",
                    **({"#r": "rule"} if rule else {}),
                },
                ExpressionAttributeValues=self._serialize(
                    {
                        ":passed": ImageStatus.PASSED.value,
                        ":pass": "PASS",
                        ":fp": fingerprint,
                        ":counts": counts,
                        ":repository": record.repository,
                        ":account": self.scope.account,
                        ":region": self.scope.region,
                        ":now": _json_time(record.updated_at),
                        ":tags": tags,
                        ":empty": [],
                        ":zero": 0,
                        ":one": 1,
                        ":entry": [entry.model_dump(mode="json", exclude_none=True)],
                        **({":rule": rule} if rule else {}),
                        **({":scanned": scanned} if scanned else {}),
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
                Key=self._key(repository, child),
                UpdateExpression=(
                    "SET repository = :repository, #account = :account, #region = :region, "
                    "index_digests = list_append(if_not_exists(index_digests, :empty), :index), "
                    "#s = if_not_exists(#s, :pending), updated_at = :now, "
                    "version = if_not_exists(version, :zero) + :one"
                ),
                ConditionExpression="attribute_not_exists(index_digests) OR NOT contains(index_digests, :digest)",
                ExpressionAttributeNames={"#s": "status", "#account": "account", "#region": "region"},
                ExpressionAttributeValues=self._serialize(
                    {
                        ":repository": repository,
                        ":account": self.scope.account,
                        ":region": self.scope.region,
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
