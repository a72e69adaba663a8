"""The real record_pass condition on moto's DynamoDB: a clean result written without a read never ends a wait for
lagging findings, never replaces a newer scan's result, and still takes the one-write path from UNSCANNED."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ecr_warden.contracts.decision import Action
from ecr_warden.domain.records import HistoryEntry, ImageRecord, ImageStatus
from tests.events import REPOSITORY, inspector_scan
from tests.integration.conftest import Env

T1 = datetime(2026, 11, 1, 11, 50, tzinfo=UTC)
T2 = T1 + timedelta(minutes=2)
T3 = T2 + timedelta(minutes=2)
DIGEST = "sha256:" + "c" * 64
CLEAN = {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0, "TOTAL": 0}


def _stored(aws: Env, **fields: object) -> ImageRecord:
    record = ImageRecord.model_validate(
        {"repository": REPOSITORY, "digest": DIGEST, "status": ImageStatus.PENDING, "updated_at": T1, **fields}
    )
    return aws.store.save(record, 0)


def _clean(scanned_at: datetime, fingerprint: str = "clean") -> ImageRecord:
    return ImageRecord(
        repository=REPOSITORY, digest=DIGEST, status=ImageStatus.PASSED, updated_at=T3, fingerprint=fingerprint,
        verdict="PASS", scanned_at=scanned_at,
    )  # fmt: skip


def _entry() -> HistoryEntry:
    return HistoryEntry(at=T3, action=Action.PASSED.value, status="PASSED", reason="clean", trigger="test")


def test_a_clean_result_does_not_end_a_wait_without_a_read(aws: Env) -> None:
    _stored(aws, awaiting_findings={"CRITICAL": 1}, scanned_at=T1)

    assert aws.store.record_pass(_clean(T2), _entry()) is None  # ConditionalCheckFailed: the gate reads

    record = aws.store.get(REPOSITORY, DIGEST)
    assert record is not None
    assert record.awaiting_findings == {"CRITICAL": 1}
    assert record.status is ImageStatus.PENDING


def test_a_clean_result_older_than_the_stored_scan_is_not_written(aws: Env) -> None:
    _stored(aws, status=ImageStatus.SCAN_FAILED, scanned_at=T2)

    assert aws.store.record_pass(_clean(T1), _entry()) is None
    assert aws.store.record_pass(_clean(T3), _entry()) == "SCAN_FAILED"

    record = aws.store.get(REPOSITORY, DIGEST)
    assert record is not None
    assert record.scanned_at == T3
    assert record.version == 2


def test_a_clean_result_after_an_unscanned_announcement_is_one_write(aws: Env) -> None:
    _stored(aws, status=ImageStatus.UNSCANNED)

    assert aws.store.record_pass(_clean(T1), _entry()) == "UNSCANNED"

    record = aws.store.get(REPOSITORY, DIGEST)
    assert record is not None
    assert record.status is ImageStatus.PASSED
    assert record.scanned_at == T1


def test_the_gate_keeps_waiting_when_an_older_clean_result_arrives(aws: Env) -> None:
    aws.create_repository()
    digest = aws.push("v1.3.0", "lagging")
    waiting = ImageRecord(
        repository=REPOSITORY, digest=digest, status=ImageStatus.PENDING, updated_at=T2,
        awaiting_findings={"CRITICAL": 1}, scanned_at=T2,
    )  # fmt: skip
    aws.store.save(waiting, 0)

    older = inspector_scan(digest, ["v1.3.0"], CLEAN).model_copy(update={"time": T1})
    assert aws.gate().handle(older).action == "noop"
    record = aws.record(digest)
    assert record is not None
    assert record.awaiting_findings == {"CRITICAL": 1}

    newer = inspector_scan(digest, ["v1.3.0"], CLEAN).model_copy(update={"time": T3})
    assert aws.gate().handle(newer).action == "passed"
    record = aws.record(digest)
    assert record is not None
    assert record.status is ImageStatus.PASSED
    assert record.awaiting_findings is None
    assert record.scanned_at == T3
