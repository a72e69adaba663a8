"""DynamoDB item plumbing every adapter of the audit table shares: JSON-shaped dicts to and from items, partition
keys, and what a failed condition looks like. Kept apart from the record store so that an adapter that needs only
these (exemptions, runs, inventory) doesn't load the record models (a cold start)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from ecr_warden.adapters.aws import error_code
from ecr_warden.domain.images import Scope


def conditional_failed(exc: Exception) -> bool:
    """A failed condition, alone or as the reason a transaction was cancelled."""
    if error_code(exc) == "ConditionalCheckFailedException":
        return True
    reasons = (getattr(exc, "response", None) or {}).get("CancellationReasons") or []
    return error_code(exc) == "TransactionCanceledException" and any(
        r.get("Code") == "ConditionalCheckFailed" for r in reasons
    )


def partition_key(scope: Scope, repository: str) -> str:
    return f"{scope.key}#{repository}"


def to_dynamo(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str), parse_float=Decimal)


def from_dynamo(value: Any) -> Any:
    def default(obj: Any) -> Any:
        if isinstance(obj, Decimal):
            return int(obj) if obj == obj.to_integral_value() else float(obj)
        if isinstance(obj, set):
            return sorted(obj)
        raise TypeError(type(obj))

    return json.loads(json.dumps(value, default=default))


def serialize_item(data: dict[str, Any]) -> dict[str, Any]:
    """A JSON-shaped dict as a DynamoDB item (floats as decimals, sets as lists)."""
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    return {key: serializer.serialize(value) for key, value in to_dynamo(data).items()}


def deserialize_item(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    result: dict[str, Any] = from_dynamo({k: deserializer.deserialize(v) for k, v in item.items()})
    return result
