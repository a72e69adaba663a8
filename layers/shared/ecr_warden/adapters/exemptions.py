"""CVE exemptions and the admin log, in ecr-warden's own store (the audit table), not in the CloudFormation-managed
policy parameter: an exemption takes effect for the very next decision and survives every deployment.

Keys (a repository name never contains "#", so neither partition can be an image's "<account>#<region>#<repo>"):

- exemptions: `pk` "<account>#<region>##exemptions", sort key (`digest`) "<repository>#<CVE>#<digest or *>"; the gate
  reads one repository's with one Query (`begins_with "<repository>#"`), once per invocation.
- admin log: `pk` "<account>#<region>##admin", sort key the request id (a retry of the same invocation writes the
  same item again): who asked (and whether that identity was verified), when, why, what and the result.

Adding and revoking an exemption is one transaction with its admin-log entry: both or neither."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecr_warden.adapters.aws import client
from ecr_warden.adapters.dynamodb_items import conditional_failed, deserialize_item, serialize_item
from ecr_warden.domain.exemptions import ExemptionConflict, StoredExemption, exemption_key, iso
from ecr_warden.domain.images import Scope
from ecr_warden.policy.model import Exemption

# TransactWriteItems is authorised by the actions it contains (PutItem, UpdateItem).
IAM_ACTIONS = frozenset({"dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"})
EXEMPTIONS = "##exemptions"  # "<account>#<region>##exemptions"
ADMIN_LOG = "##admin"


@dataclass
class DynamoExemptions:
    table_name: str
    scope: Scope
    _client: Any = field(default=None)
    _cache: dict[str, list[StoredExemption]] = field(default_factory=dict)

    @property
    def dynamodb(self) -> Any:
        return self._client or client("dynamodb")

    @property
    def _pk(self) -> str:
        return f"{self.scope.key}{EXEMPTIONS}"

    # -- the gate's port -------------------------------------------------------------------------------------------

    def active(self, repository: str, now: datetime) -> list[Exemption]:
        """The repository's exemptions in force at `now`: one Query, kept for the rest of the invocation."""
        if repository not in self._cache:
            self._cache[repository] = self.query(repository)
        return [e.as_policy_exemption() for e in self._cache[repository] if e.state(now) == "active"]

    # -- the admin function's --------------------------------------------------------------------------------------

    def query(self, repository: str | None = None) -> list[StoredExemption]:
        """Every stored exemption (of one repository), whatever its state."""
        args: dict[str, Any] = {
            "TableName": self.table_name,
            "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": self._pk}},
        }
        if repository is not None:
            args["KeyConditionExpression"] += " AND begins_with(#sk, :prefix)"
            args["ExpressionAttributeNames"] = {"#sk": "digest"}
            args["ExpressionAttributeValues"][":prefix"] = {"S": f"{repository}#"}
        found: list[StoredExemption] = []
        for page in self.dynamodb.get_paginator("query").paginate(**args):
            found.extend(StoredExemption.from_item(self._deserialize(item)) for item in page.get("Items", []))
        return found

    def get(self, repository: str, cve: str, digest: str | None) -> StoredExemption | None:
        response = self.dynamodb.get_item(
            TableName=self.table_name,
            ConsistentRead=True,
            Key={"pk": {"S": self._pk}, "digest": {"S": exemption_key(repository, cve, digest)}},
        )
        item = response.get("Item")
        return StoredExemption.from_item(self._deserialize(item)) if item else None

    def add(self, exemption: StoredExemption, log: dict[str, Any], now: datetime) -> None:
        """Store the exemption unless an active one has its key (a revoked or expired one is replaced), with its
        admin-log entry, in one transaction. ExemptionConflict when the condition fails."""
        item = {"pk": self._pk, "digest": exemption.sort_key, **exemption.to_item()}
        put = {
            "TableName": self.table_name,
            "Item": self._serialize(item),
            "ConditionExpression": "attribute_not_exists(pk) OR attribute_exists(revoked_at) OR expires <= :now",
            "ExpressionAttributeValues": {":now": {"S": iso(now)}},
        }
        self._transact({"Put": put}, log, exemption.repository, exemption.cve, exemption.digest)

    def revoke(
        self, current: StoredExemption, by: str, reason: str, request_id: str, log: dict[str, Any], now: datetime
    ) -> None:
        """Mark the exemption revoked (it stays, for the record), with its admin-log entry, in one transaction; only
        while it is the one read (same request id) and not revoked yet. ExemptionConflict when that fails."""
        update = {
            "TableName": self.table_name,
            "Key": {"pk": {"S": self._pk}, "digest": {"S": current.sort_key}},
            "UpdateExpression": "SET revoked_at = :now, revoked_by = :by, revoke_reason = :reason, "
            "revoke_request_id = :request",
            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(revoked_at) AND request_id = :added",
            "ExpressionAttributeValues": self._serialize(
                {":now": iso(now), ":by": by, ":reason": reason, ":request": request_id, ":added": current.request_id}
            ),
        }
        self._transact({"Update": update}, log, current.repository, current.cve, current.digest)

    def record(self, log: dict[str, Any]) -> None:
        """An admin-log entry on its own (actions whose changes the gate or the settings guard record)."""
        self.dynamodb.put_item(TableName=self.table_name, Item=self._serialize(self._log_item(log)))

    def logged(self, request_id: str) -> dict[str, Any] | None:
        """The admin-log entry of a request, if written (a retry of the request finds what its first run resolved)."""
        response = self.dynamodb.get_item(
            TableName=self.table_name,
            ConsistentRead=True,
            Key={"pk": {"S": f"{self.scope.key}{ADMIN_LOG}"}, "digest": {"S": request_id}},
        )
        item = response.get("Item")
        return self._deserialize(item) if item else None

    def _transact(
        self, write: dict[str, Any], log: dict[str, Any], repository: str, cve: str, digest: str | None
    ) -> None:
        log_put = {"Put": {"TableName": self.table_name, "Item": self._serialize(self._log_item(log))}}
        try:
            self.dynamodb.transact_write_items(TransactItems=[write, log_put])
        except Exception as exc:
            if conditional_failed(exc):
                raise ExemptionConflict(self.get(repository, cve, digest)) from exc
            raise

    def _log_item(self, log: dict[str, Any]) -> dict[str, Any]:
        return {**log, "pk": f"{self.scope.key}{ADMIN_LOG}", "digest": str(log["request_id"])}

    _serialize = staticmethod(serialize_item)
    _deserialize = staticmethod(deserialize_item)
