"""Lifecycle policy evaluation as ECR's preview reports it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecr_warden_tools.local.lifecycle import ImageRecord, LifecyclePolicyError, evaluate, parse_policy

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _image(digest: str, *tags: str, days_old: float = 0) -> ImageRecord:
    return ImageRecord(digest, tags, NOW - timedelta(days=days_old))


def _policy(*selections: dict[str, Any]) -> str:
    return json.dumps(
        {
            "rules": [
                {"rulePriority": i + 1, "selection": selection, "action": {"type": "expire"}}
                for i, selection in enumerate(selections)
            ]
        }
    )


def _expired(text: str, images: list[ImageRecord]) -> dict[str, int]:
    return {r.image.digest: r.rule.priority for r in evaluate(parse_policy(text), images, NOW)}


def test_image_count_keeps_the_newest_matching_images() -> None:
    images = [_image(f"d{n}", f"dev-{n}", days_old=n) for n in range(1, 5)] + [_image("v", "v1.0.0", days_old=9)]
    text = _policy(
        {"tagStatus": "tagged", "tagPrefixList": ["dev-"], "countType": "imageCountMoreThan", "countNumber": 2}
    )
    assert _expired(text, images) == {"d3": 1, "d4": 1}


def test_since_image_pushed_expires_only_older_images() -> None:
    images = [_image("old", days_old=6), _image("older", days_old=8), _image("tagged", "v1", days_old=30)]
    text = _policy({"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7})
    assert _expired(text, images) == {"older": 1}


def test_an_image_matched_by_a_higher_priority_rule_is_not_expired_by_a_lower_one() -> None:
    images = [_image("prod", "prod-1", days_old=40), _image("other", "feature-x", days_old=40)]
    text = _policy(
        {"tagStatus": "tagged", "tagPrefixList": ["prod-"], "countType": "imageCountMoreThan", "countNumber": 5},
        {"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30},
    )
    assert _expired(text, images) == {"other": 2}


def test_every_prefix_or_pattern_must_match_one_of_the_tags() -> None:
    both = _image("both", "alpha-1", "beta-1", days_old=3)
    one = _image("one", "alpha-2", days_old=3)
    prefixes = _policy(
        {
            "tagStatus": "tagged",
            "tagPrefixList": ["alpha", "beta"],
            "countType": "imageCountMoreThan",
            "countNumber": 0 + 1,
        }
    )
    assert _expired(prefixes, [both, one, _image("newer", "alpha-9", "beta-9")]) == {"both": 1}
    patterns = _policy(
        {
            "tagStatus": "tagged",
            "tagPatternList": ["*-1"],
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": 1,
        }
    )
    assert _expired(patterns, [both, one]) == {"both": 1}


@pytest.mark.parametrize(
    ("selection", "problem"),
    [
        ({"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1}, "exactly one of"),
        (
            {"tagStatus": "untagged", "tagPrefixList": ["x"], "countType": "imageCountMoreThan", "countNumber": 1},
            "takes no tagPrefixList",
        ),
        ({"tagStatus": "untagged", "countType": "sinceImagePushed", "countNumber": 1}, "countUnit"),
        ({"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 0}, "countNumber"),
        ({"tagStatus": "some", "countType": "imageCountMoreThan", "countNumber": 1}, "tagStatus must be one of"),
    ],
)
def test_invalid_rules_are_refused_naming_the_problem(selection: dict[str, Any], problem: str) -> None:
    with pytest.raises(LifecyclePolicyError, match=problem):
        parse_policy(_policy(selection))


def test_any_must_be_the_last_rule() -> None:
    text = _policy(
        {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
        {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1},
    )
    with pytest.raises(LifecyclePolicyError, match="highest rulePriority"):
        parse_policy(text)
