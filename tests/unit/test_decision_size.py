"""Defect 15: a decision about an image with many long tags (a pusher chooses how many) must still fit one
EventBridge entry (256 KiB), or PutEvents rejects it and the quarantine is never announced."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ecr_warden.adapters.decision_bus import MAX_DETAIL_BYTES, fitted_json
from ecr_warden.contracts.decision import SCHEMA_VERSION, Action, DecisionDetail

DIGEST = "sha256:" + "a" * 64


def _decision(tags: int, not_restored: int = 0) -> DecisionDetail:
    return DecisionDetail(
        schema_version=SCHEMA_VERSION,
        decision_id="d-1",
        time=datetime(2026, 11, 28, tzinfo=UTC),
        account="123456789012",
        region="us-east-1",
        environment="dev",
        mode="enforce",
        repository="ses-base/api-server",
        digest=DIGEST,
        tags=[f"{i:04d}-" + "t" * 123 for i in range(tags)],  # ECR's longest tags: 128 characters
        verdict="BLOCK",
        action=Action.RELEASE_INCOMPLETE,
        status="RELEASED",
        reasons=["scanner reported 2 CRITICAL"],
        not_restored={f"{i:04d}-" + "r" * 123: "sha256:" + "b" * 64 for i in range(not_restored)},
        trigger="admin release",
    )


def test_an_ordinary_decision_is_sent_whole() -> None:
    decision = _decision(tags=3)
    assert fitted_json(decision) == decision.model_dump_json(exclude_none=True)


def test_a_thousand_long_tags_are_trimmed_to_fit_and_say_so() -> None:
    decision = _decision(tags=1000, not_restored=1000)
    assert len(decision.model_dump_json().encode()) > 256 * 1024, "the case this test is about"
    body = fitted_json(decision)
    assert len(body.encode()) <= MAX_DETAIL_BYTES
    sent = DecisionDetail.model_validate_json(body)  # still a valid decision for every consumer
    assert sent.tags == decision.tags[: len(sent.tags)]
    assert list(sent.not_restored) == list(decision.not_restored)[: len(sent.not_restored)]
    assert len(sent.tags) + len(sent.not_restored) < 2000
    assert "left out to fit EventBridge's 256 KB" in sent.reasons[-1]
    assert json.loads(body)["digest"] == DIGEST


def test_tags_alone_are_trimmed_too() -> None:
    body = fitted_json(_decision(tags=2500))
    sent = DecisionDetail.model_validate_json(body)
    assert len(body.encode()) <= MAX_DETAIL_BYTES
    assert 0 < len(sent.tags) < 2500
    assert "more tags" in sent.reasons[-1]
