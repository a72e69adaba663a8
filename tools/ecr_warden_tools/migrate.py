"""`ecr-warden migrate-audit`: copy audit records from the table of versions before 0.2 into today's table.

Before 0.2 the audit table (ecr-warden-<env>-audit) was keyed by repository + digest, which collides once one
deployment guards several accounts or regions. 0.2 writes ecr-warden-<env>-audit-v2, keyed by
"<account>#<region>#<repository>" + digest; CloudFormation keeps the old table (DeletionPolicy: Retain). A
pre-0.2 deployment ran in one account and region, so each old item belongs to exactly that scope.

Safe to run at any time and more than once: a record the new version already wrote is never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ecr_warden.adapters.aws import error_code
from ecr_warden.adapters.dynamodb_items import partition_key
from ecr_warden.domain.images import Scope


@dataclass
class MigrationReport:
    source: str
    target: str
    copied: int = 0
    kept: int = 0  # already in the target (written by the new version, or by an earlier run)
    skipped: list[str] = field(default_factory=list)  # items without repository/digest: not audit records

    def summary(self) -> str:
        text = f"{self.source} -> {self.target}: {self.copied} copied, {self.kept} already present"
        return text + (f", {len(self.skipped)} skipped (not image records)" if self.skipped else "")


class NothingToMigrate(Exception):
    pass


def migrate_audit(dynamodb: Any, source: str, target: str, scope: Scope, dry_run: bool = False) -> MigrationReport:
    report = MigrationReport(source, target)
    try:
        dynamodb.describe_table(TableName=source)
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise NothingToMigrate(f"no table {source}: nothing to migrate") from None
        raise
    for page in dynamodb.get_paginator("scan").paginate(TableName=source, ConsistentRead=True):
        for item in page.get("Items", []):
            _copy(dynamodb, item, report, scope, dry_run)
    return report


def _copy(dynamodb: Any, item: dict[str, Any], report: MigrationReport, scope: Scope, dry_run: bool) -> None:
    repository, digest = item.get("repository", {}).get("S"), item.get("digest", {}).get("S")
    if not repository or not digest:
        report.skipped.append(str(item.get("digest", item)))
        return
    migrated = {
        **item,
        "pk": {"S": partition_key(scope, repository)},
        "account": {"S": scope.account},
        "region": {"S": scope.region},
    }
    if dry_run:
        report.copied += 1
        return
    try:
        dynamodb.put_item(TableName=report.target, Item=migrated, ConditionExpression="attribute_not_exists(pk)")
    except Exception as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
        report.kept += 1
        return
    report.copied += 1
