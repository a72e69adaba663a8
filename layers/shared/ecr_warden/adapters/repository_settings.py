"""The settings guard's AWS: ECR repository and registry settings (reads and the writes of its actions), its records
in the audit table, and the reconcile fan-out queue.

Audit items live in the repository's partition of the audit table under sort keys `settings#<trigger>` (one per
trigger: claimed, failed or done, with the changes before -> after) and `settings#state` (the last gaps announced,
status SETTINGS_NONCOMPLIANT: the by-status index lists non-compliant repositories)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ecr_warden.adapters.aws import client, error_code
from ecr_warden.adapters.dynamodb_items import conditional_failed, partition_key, to_dynamo
from ecr_warden.domain.images import Scope
from ecr_warden.errors import WardenError
from ecr_warden.observability import logger
from ecr_warden.repository_settings.ports import Prior
from ecr_warden.repository_settings.state import RegistryScanning, ReplicationRule, RepositoryState, ScanRule

ECR_READS = frozenset(
    {
        "ecr:DescribeRepositories",
        "ecr:GetLifecyclePolicy",
        "ecr:GetRepositoryPolicy",
        "ecr:ListTagsForResource",
        "ecr:GetRegistryScanningConfiguration",
        "ecr:DescribeRegistry",  # the replication configuration: do quarantines reach the replicas?
        "ecr:DescribePullThroughCacheRules",
        "ecr:DescribeRepositoryCreationTemplates",
        "kms:DescribeKey",  # is the repository's key customer-managed or AWS-managed (aws/ecr)?
    }
)
# IAM actions this module's adapters call themselves; the writes belong to the actions that make them
# (ecr_warden.repository_settings.actions), and template.yaml grants both (tests/unit/test_template.py compares).
IAM_ACTIONS = ECR_READS | frozenset({"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "sqs:SendMessage"})
_GONE = frozenset({"RepositoryNotFoundException"})
# Operations a registry (or an emulator) may not offer: the guard then works without what they add.
_UNSUPPORTED = frozenset({"UnknownOperationException", "UnsupportedOperation", "InvalidAction", "ValidationException"})
PREFIX = "settings#"
STATE = "settings#state"


class FanOutError(WardenError):
    pass


@dataclass
class EcrSettingsRegistry:
    _client: Any = field(default=None)
    scope: Scope | None = None
    _kms: Any = field(default=None)
    _managers: dict[str, str | None] = field(default_factory=dict)
    _described: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ecr(self) -> Any:
        return self._client or client("ecr", self.scope)

    def prefetch(self, names: list[str]) -> None:
        """Describe a batch of repositories in one call (up to 100 names), for the next repository() of each: a
        run's batch costs one DescribeRepositories instead of one per repository. If any of them is gone, ECR
        refuses the whole call: each is then described on its own, as without this."""
        for start in range(0, len(names), 100):
            try:
                found = self.ecr.describe_repositories(repositoryNames=names[start : start + 100])["repositories"]
            except Exception as exc:
                if error_code(exc) in _GONE:
                    continue
                raise
            self._described.update({str(r["repositoryName"]): r for r in found})

    def repository(self, name: str) -> RepositoryState | None:
        try:
            found = (
                self._described.pop(name, None)
                or self.ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
            )
            tags = self.ecr.list_tags_for_resource(resourceArn=found["repositoryArn"]).get("tags") or []
            lifecycle = self._optional(self.ecr.get_lifecycle_policy, name, "lifecyclePolicyText")
            policy = self._optional(self.ecr.get_repository_policy, name, "policyText")
        except Exception as exc:
            if error_code(exc) in _GONE:
                return None
            raise
        encryption = found.get("encryptionConfiguration") or {}
        return RepositoryState(
            name=name,
            arn=found["repositoryArn"],
            mutability=found.get("imageTagMutability", "MUTABLE"),
            mutability_exclusions=tuple(f["filter"] for f in found.get("imageTagMutabilityExclusionFilters") or []),
            scan_on_push=bool((found.get("imageScanningConfiguration") or {}).get("scanOnPush")),
            encryption_type=encryption.get("encryptionType", "AES256"),
            kms_key=encryption.get("kmsKey"),
            kms_key_manager=self._key_manager(encryption.get("kmsKey")),
            tags={t["Key"]: t["Value"] for t in tags},
            lifecycle_text=lifecycle,
            policy_text=policy,
        )

    def _key_manager(self, key: str | None) -> str | None:
        """CUSTOMER or AWS; None when KMS does not say (the key is in another account, or not readable)."""
        if not key:
            return None
        if key not in self._managers:
            kms = self._kms or client("kms", self.scope)
            try:
                self._managers[key] = kms.describe_key(KeyId=key)["KeyMetadata"].get("KeyManager")
            except Exception as exc:
                if error_code(exc) not in ("NotFoundException", "AccessDeniedException"):
                    raise
                self._managers[key] = None
        return self._managers[key]

    def _optional(self, call: Any, name: str, key: str) -> str | None:
        try:
            text: str = call(repositoryName=name)[key]
        except Exception as exc:
            if error_code(exc) in ("LifecyclePolicyNotFoundException", "RepositoryPolicyNotFoundException"):
                return None
            raise
        return text

    def registry_scanning(self) -> RegistryScanning | None:
        try:
            config = self.ecr.get_registry_scanning_configuration().get("scanningConfiguration") or {}
        except Exception as exc:
            if error_code(exc) in _UNSUPPORTED:
                logger.warning("registry scanning configuration unavailable", error_code=error_code(exc))
                return None
            raise
        rules = tuple(
            ScanRule(r["scanFrequency"], tuple(f["filter"] for f in r.get("repositoryFilters") or []))
            for r in config.get("rules") or []
        )
        return RegistryScanning(config.get("scanType", "BASIC"), rules)

    def registry_replication(self) -> tuple[ReplicationRule, ...] | None:
        """The registry's replication rules; None when the registry (or an emulator) does not say."""
        ecr = self.ecr
        ecr.meta.events.register("after-call.ecr.DescribeRegistry", _keep_raw_rules, unique_id=_RAW_RULES)
        try:
            found = ecr.describe_registry()
        except Exception as exc:
            if error_code(exc) in _UNSUPPORTED or isinstance(exc, NotImplementedError):
                return None
            raise
        rules = found.get(_RAW_RULES) or (found.get("replicationConfiguration") or {}).get("rules") or []
        return tuple(_replication_rule(rule) for rule in rules if isinstance(rule, dict))

    def pull_through_prefixes(self) -> list[str]:
        try:
            pages = self.ecr.get_paginator("describe_pull_through_cache_rules").paginate()
            return [rule["ecrRepositoryPrefix"] for page in pages for rule in page.get("pullThroughCacheRules", [])]
        except Exception as exc:
            if error_code(exc) in _UNSUPPORTED or isinstance(exc, NotImplementedError):
                return []
            raise

    def creation_templates(self) -> list[dict[str, Any]] | None:
        """None when the registry (or an emulator) does not answer: the decision then says so."""
        try:
            pages = self.ecr.get_paginator("describe_repository_creation_templates").paginate()
            return [t for page in pages for t in page.get("repositoryCreationTemplates", [])]
        except Exception as exc:
            if error_code(exc) in _UNSUPPORTED or isinstance(exc, NotImplementedError):
                return None
            raise

    def repository_names(self) -> Iterator[str]:
        for page in self.ecr.get_paginator("describe_repositories").paginate(PaginationConfig={"PageSize": 1000}):
            for repository in page.get("repositories", []):
                yield repository["repositoryName"]

    def set_mutability(self, name: str, mode: str, exclusions: Sequence[str]) -> None:
        request: dict[str, Any] = {"repositoryName": name, "imageTagMutability": mode}
        if exclusions:
            request["imageTagMutabilityExclusionFilters"] = [
                {"filterType": "WILDCARD", "filter": f} for f in exclusions
            ]
        self.ecr.put_image_tag_mutability(**request)

    def put_lifecycle_policy(self, name: str, text: str) -> None:
        self.ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=text)

    def set_repository_policy(self, name: str, text: str) -> None:
        self.ecr.set_repository_policy(repositoryName=name, policyText=text)

    def tag(self, arn: str, tags: Mapping[str, str]) -> None:
        self.ecr.tag_resource(resourceArn=arn, tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def put_registry_scanning(self, configuration: Mapping[str, Any]) -> None:
        self.ecr.put_registry_scanning_configuration(scanType=configuration["scanType"], rules=configuration["rules"])


# `deleteReplication` is in ECR's API (the DeleteReplication type of a replication rule) but not in the model of
# every botocore (1.43.127 has only destinations and repositoryFilters), and botocore drops members its model lacks.
# The rules are therefore also read from the raw response, whatever the botocore.
_RAW_RULES = "ecr-warden:raw-replication-rules"


def _keep_raw_rules(http_response: Any = None, parsed: Any = None, **_: Any) -> None:
    try:
        body = json.loads(getattr(http_response, "content", None) or b"{}")
    except ValueError:
        return
    rules = (body.get("replicationConfiguration") or {}).get("rules") if isinstance(body, dict) else None
    if isinstance(rules, list) and isinstance(parsed, dict):
        parsed[_RAW_RULES] = rules


def _replication_rule(rule: Mapping[str, Any]) -> ReplicationRule:
    destinations = tuple(
        f"{d.get('registryId', '?')}/{d.get('region', '?')}"
        for d in rule.get("destinations") or []
        if isinstance(d, dict)
    )
    prefixes = tuple(
        str(f["filter"])
        for f in rule.get("repositoryFilters") or []
        if isinstance(f, dict) and f.get("filterType", "PREFIX_MATCH") == "PREFIX_MATCH" and f.get("filter")
    )
    deletes = rule.get("deleteReplication")
    return ReplicationRule(destinations, prefixes, isinstance(deletes, dict) and deletes.get("enabled") is True)


@dataclass
class DynamoSettingsAudit:
    table_name: str
    scope: Scope
    _client: Any = field(default=None)

    @property
    def dynamodb(self) -> Any:
        return self._client or client("dynamodb")

    def _key(self, repository: str, sort: str) -> dict[str, Any]:
        return {"pk": {"S": partition_key(self.scope, repository)}, "digest": {"S": sort}}

    def get(self, repository: str, trigger_id: str) -> Prior | None:
        item = self.dynamodb.get_item(
            TableName=self.table_name, ConsistentRead=True, Key=self._key(repository, PREFIX + trigger_id)
        ).get("Item")
        if not item:
            return None
        changes = json.loads(item["changes"]["S"]) if "changes" in item else []
        return Prior(item["status"]["S"].removeprefix("SETTINGS_"), tuple(changes))

    def claim(self, repository: str, trigger_id: str, now: datetime, lease_seconds: int) -> bool:
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key=self._key(repository, PREFIX + trigger_id),
                UpdateExpression="SET #s = :claimed, lease_until = :until, updated_at = :now",
                ConditionExpression="attribute_not_exists(pk) OR #s = :failed OR lease_until < :now",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":claimed": {"S": "SETTINGS_IN_PROGRESS"},
                    ":failed": {"S": "SETTINGS_FAILED"},
                    ":until": {"S": _iso(now + timedelta(seconds=lease_seconds))},
                    ":now": {"S": _iso(now)},
                },
            )
        except Exception as exc:
            if conditional_failed(exc):
                return False
            raise
        return True

    def fail(self, repository: str, trigger_id: str, changes: Sequence[Mapping[str, Any]]) -> None:
        self.dynamodb.update_item(
            TableName=self.table_name,
            Key=self._key(repository, PREFIX + trigger_id),
            UpdateExpression="SET #s = :failed, changes = :changes REMOVE lease_until",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":failed": {"S": "SETTINGS_FAILED"}, ":changes": {"S": json.dumps(changes)}},
        )

    def finish(self, repository: str, trigger_id: str, entry: Mapping[str, Any]) -> bool:
        """The trigger's outcome, written once: a skip only if nothing was recorded for the trigger yet."""
        from boto3.dynamodb.types import TypeSerializer

        values = {k: v for k, v in to_dynamo(dict(entry)).items() if v is not None and k not in ("status", "changes")}
        item = {
            **{k: TypeSerializer().serialize(v) for k, v in values.items()},
            **self._key(repository, PREFIX + trigger_id),
            "status": {"S": f"SETTINGS_{entry['status']}"},
            "changes": {"S": json.dumps(entry.get("changes") or [])},
            "updated_at": {"S": _iso(datetime.now(UTC))},
            "account": {"S": self.scope.account},
            "region": {"S": self.scope.region},
            "repository": {"S": repository},
        }
        put: dict[str, Any] = {"TableName": self.table_name, "Item": item}
        if entry["status"] == "SKIPPED":
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        try:
            self.dynamodb.put_item(**put)
        except Exception as exc:
            if conditional_failed(exc):
                return False
            raise
        return True

    def remember_report(self, repository: str, fingerprint: str) -> bool:
        """True when these gaps were not the last ones announced for the repository (and remembers them)."""
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key=self._key(repository, STATE),
                UpdateExpression="SET fingerprint = :f, #s = :s, updated_at = :now, repository = :r",
                ConditionExpression="attribute_not_exists(fingerprint) OR fingerprint <> :f",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":f": {"S": fingerprint},
                    ":s": {"S": "SETTINGS_NONCOMPLIANT"},
                    ":now": {"S": _iso(datetime.now(UTC))},
                    ":r": {"S": repository},
                },
            )
        except Exception as exc:
            if conditional_failed(exc):
                return False
            raise
        return True


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class SqsFanOut:
    queue_url: str
    _client: Any = field(default=None)

    def send(self, bodies: Sequence[str]) -> None:
        sqs = self._client or client("sqs")
        for start in range(0, len(bodies), 10):  # SendMessageBatch: at most 10 entries
            entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies[start : start + 10])]
            failed = sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries).get("Failed") or []
            if failed:
                raise FanOutError(f"{len(failed)} reconcile message(s) not queued: {failed[0].get('Code')}")
