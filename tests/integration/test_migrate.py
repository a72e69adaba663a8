"""Upgrading from a version before 0.2: audit records move to the account/region-keyed table, and the gate reads
them as before."""

from __future__ import annotations

import pytest

from ecr_warden.domain.images import Scope
from ecr_warden.domain.records import ImageStatus
from ecr_warden_tools.migrate import NothingToMigrate, migrate_audit
from tests.integration import events
from tests.integration.conftest import ACCOUNT, REPOSITORY, Env

LEGACY = "ecr-warden-dev-audit"
DIGEST = "sha256:" + "a" * 64


def _legacy_table(aws: Env) -> None:
    dynamodb = aws.clients["dynamodb"]
    dynamodb.create_table(
        TableName=LEGACY,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "repository", "AttributeType": "S"},
            {"AttributeName": "digest", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "repository", "KeyType": "HASH"},
            {"AttributeName": "digest", "KeyType": "RANGE"},
        ],
    )
    dynamodb.put_item(
        TableName=LEGACY,
        Item={
            "repository": {"S": REPOSITORY},
            "digest": {"S": DIGEST},
            "status": {"S": "QUARANTINED"},
            "version": {"N": "3"},
            "updated_at": {"S": "2026-11-01T00:00:00Z"},
            "original_tags": {"L": [{"S": "v1.2.3"}]},
            "quarantine_tag": {"S": "quarantined-aaaaaaaaaaaa"},
            "fingerprint": {"S": "f" * 32},
            "verdict": {"S": "BLOCK"},
        },
    )


def test_legacy_records_are_copied_once_and_read_by_the_new_version(aws: Env) -> None:
    _legacy_table(aws)
    scope = Scope(ACCOUNT, "us-east-1")
    target = aws.outputs["AuditTableName"]
    dynamodb = aws.clients["dynamodb"]

    assert migrate_audit(dynamodb, LEGACY, target, scope, dry_run=True).copied == 1
    assert aws.record(DIGEST) is None  # a dry run writes nothing

    report = migrate_audit(dynamodb, LEGACY, target, scope)
    assert (report.copied, report.kept) == (1, 0)
    record = aws.record(DIGEST)
    assert record is not None
    assert record.status is ImageStatus.QUARANTINED
    assert record.original_tags == ["v1.2.3"]
    assert (record.account, record.region, record.version) == (ACCOUNT, "us-east-1", 3)

    again = migrate_audit(dynamodb, LEGACY, target, scope)
    assert (again.copied, again.kept) == (0, 1)  # never overwrites what is there


def test_a_record_the_new_version_wrote_wins_over_the_legacy_one(aws: Env) -> None:
    _legacy_table(aws)
    aws.create_repository()
    digest = aws.push("v9", "fresh")
    aws.gate().handle(events.inspector_scan(digest, ["v9"], {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0}))
    dynamodb = aws.clients["dynamodb"]
    dynamodb.put_item(
        TableName=LEGACY,
        Item={"repository": {"S": REPOSITORY}, "digest": {"S": digest}, "status": {"S": "QUARANTINED"}},
    )
    report = migrate_audit(dynamodb, LEGACY, aws.outputs["AuditTableName"], Scope(ACCOUNT, "us-east-1"))
    assert report.kept == 1
    assert aws.record(digest).status is ImageStatus.PASSED  # type: ignore[union-attr]


def test_no_legacy_table_means_nothing_to_migrate(aws: Env) -> None:
    with pytest.raises(NothingToMigrate, match="nothing to migrate"):
        migrate_audit(aws.clients["dynamodb"], LEGACY, aws.outputs["AuditTableName"], Scope(ACCOUNT, "us-east-1"))
