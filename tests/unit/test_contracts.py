from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from ecr_warden.contracts.aws_events import (
    CloudTrailEcrEvent,
    EcrImageActionEvent,
    EcrImageScanEvent,
    Inspector2FindingEvent,
    Inspector2ScanEvent,
)
from ecr_warden.contracts.common import parse_aws_timestamp, repository_name_from
from ecr_warden.contracts.parsing import parse_aws_event
from ecr_warden.errors import EventValidationError, ForeignEventError, UnsupportedEventError
from tests.conftest import EVENTS, load_event

MODEL_BY_PREFIX = {
    "ecr-image-action": EcrImageActionEvent,
    "ecr-image-scan": EcrImageScanEvent,
    "inspector2-scan": Inspector2ScanEvent,
    "inspector2-finding": Inspector2FindingEvent,
    "cloudtrail": CloudTrailEcrEvent,
}
# Well-formed Inspector events about resources ecr-warden does not guard.
FOREIGN = {"inspector2-scan-ec2.json", "inspector2-scan-lambda.json", "inspector2-finding-lambda.json"}
SAMPLES = sorted(
    p.name for p in EVENTS.glob("*.json") if not p.name.startswith("ecr-warden-") and p.name not in FOREIGN
)


def test_every_detail_type_has_samples() -> None:
    assert {prefix for prefix in MODEL_BY_PREFIX if any(name.startswith(prefix) for name in SAMPLES)} == set(
        MODEL_BY_PREFIX
    )


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_parses_with_its_model(name: str) -> None:
    model = next(m for prefix, m in MODEL_BY_PREFIX.items() if name.startswith(prefix))
    parsed = parse_aws_event(load_event(name))
    assert isinstance(parsed, model)
    assert parsed.account == "123456789012"


def test_inspector_scan_repository_arn_becomes_name() -> None:
    parsed = parse_aws_event(load_event("inspector2-scan-critical.json"))
    assert isinstance(parsed, Inspector2ScanEvent)
    assert parsed.detail.repository_name == "ses-base/api-server"
    assert parsed.detail.finding_severity_counts is not None
    assert parsed.detail.finding_severity_counts.critical == 2


def test_repository_arn_with_digest_suffix() -> None:
    parsed = parse_aws_event(load_event("inspector2-scan-arn-with-digest.json"))
    assert parsed.detail.repository_name == "ses-base/api-server"  # type: ignore[union-attr]
    assert repository_name_from("arn:aws:ecr:us-east-1:1:repository/a/b/c/sha256:" + "ab" * 32) == "a/b/c"


def test_missing_counts_and_empty_tags_are_kept_as_unknown() -> None:
    parsed = parse_aws_event(load_event("inspector2-scan-missing-counts.json"))
    assert isinstance(parsed, Inspector2ScanEvent)
    assert parsed.detail.image_tags == []
    counts = parsed.detail.finding_severity_counts
    assert counts is None or counts.critical is None


def test_untagged_push_has_no_tag() -> None:
    for name in ("ecr-image-action-push-untagged.json", "ecr-image-action-push-empty-tag.json"):
        parsed = parse_aws_event(load_event(name))
        assert isinstance(parsed, EcrImageActionEvent)
        assert parsed.detail.image_tag is None


def test_unknown_fields_do_not_break_parsing() -> None:
    raw = load_event("ecr-image-action-push.json")
    raw["detail"]["a-field-aws-adds-in-2027"] = {"nested": True}
    raw["new-envelope-field"] = 1
    assert isinstance(parse_aws_event(raw), EcrImageActionEvent)


def test_finding_timestamps_in_human_formats() -> None:
    parsed = parse_aws_event(load_event("inspector2-finding-critical-active.json"))
    assert isinstance(parsed, Inspector2FindingEvent)
    assert parsed.detail.first_observed_at is not None
    assert parsed.detail.first_observed_at.tzinfo is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dec 3, 2021, 6:02:30 PM", datetime(2021, 12, 3, 18, 2, 30, tzinfo=UTC)),
        ("Wed Sep 04 16:55:38.411 UTC 2024", datetime(2024, 9, 4, 16, 55, 38, 411000, tzinfo=UTC)),
        ("Jul 11, 2018 10:17:44 PM", datetime(2018, 7, 11, 22, 17, 44, tzinfo=UTC)),
        ("2021-12-03T18:02:30Z", datetime(2021, 12, 3, 18, 2, 30, tzinfo=UTC)),
        (1638554550000, datetime(2021, 12, 3, 18, 2, 30, tzinfo=UTC)),
    ],
)
def test_timestamp_formats(text: object, expected: datetime) -> None:
    assert parse_aws_timestamp(text) == expected


def test_malformed_event_names_the_field() -> None:
    raw = copy.deepcopy(load_event("ecr-image-action-push.json"))
    raw["detail"]["image-digest"] = "not-a-digest"
    with pytest.raises(EventValidationError) as caught:
        parse_aws_event(raw)
    assert caught.value.field == "detail.image-digest"
    assert "detail.image-digest" in str(caught.value)


def test_missing_detail_field() -> None:
    raw = load_event("inspector2-scan-critical.json")
    del raw["detail"]["image-digest"]
    with pytest.raises(EventValidationError, match=r"detail\.image-digest"):
        parse_aws_event(raw)


def test_unknown_detail_type_is_unsupported() -> None:
    raw = load_event("ecr-image-action-push.json") | {"detail-type": "ECR Replication Action"}
    with pytest.raises(UnsupportedEventError, match="ECR Replication Action"):
        parse_aws_event(raw)


def test_not_an_object() -> None:
    with pytest.raises(EventValidationError, match="not a JSON object"):
        parse_aws_event(["a", "list"])


def test_finding_for_a_lambda_function_is_foreign_not_malformed() -> None:
    raw = load_event("inspector2-finding-critical-active.json")
    raw["detail"]["resources"] = [{"type": "AWS_LAMBDA_FUNCTION", "id": "arn:aws:lambda:us-east-1:1:function:f"}]
    with pytest.raises(ForeignEventError, match="AWS_LAMBDA_FUNCTION: not an ECR image"):
        parse_aws_event(raw)


def test_decision_event_sample_parses() -> None:
    from ecr_warden.contracts.decision import DecisionEvent

    event = DecisionEvent.model_validate(load_event("ecr-warden-decision-quarantined.json"))
    assert event.detail.action == "quarantined"


def test_decision_event_of_an_unknown_major_version_is_rejected() -> None:
    from ecr_warden.contracts.decision import DecisionEvent
    from ecr_warden.contracts.parsing import validate_model

    raw = load_event("ecr-warden-decision-quarantined.json")
    raw["detail"]["schema_version"] = "2.0"
    with pytest.raises(EventValidationError, match="schema_version"):
        validate_model(DecisionEvent, raw, what="decision event")


@pytest.mark.parametrize("name", sorted(FOREIGN))
def test_events_about_other_resources_are_foreign_not_malformed(name: str) -> None:
    with pytest.raises(ForeignEventError, match="not an ECR image"):
        parse_aws_event(load_event(name))


def test_a_malformed_ecr_scan_is_still_malformed() -> None:
    raw = load_event("inspector2-scan-critical.json")
    del raw["detail"]["image-digest"]
    with pytest.raises(EventValidationError, match="image-digest"):
        parse_aws_event(raw)
