"""The policy's repository_settings: the guide's defaults, and invalid rules or statements rejected at load time,
naming what is wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecr_warden.policy.load import InvalidPolicyError, default_policy, parse_policy
from ecr_warden.repository_settings.lifecycle import guide_rules

UNTAGGED_7 = {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7}


def _policy(profile: dict[str, Any], **section: Any) -> str:
    return json.dumps(
        {
            "rules": [{"name": "d"}],
            "repository_settings": {"profiles": [{"name": "p", "repositories": ["ses-base/*"], **profile}], **section},
        }
    )


def test_defaults_follow_the_guide() -> None:
    profile = default_policy().repository_settings.profile_for("anything/at-all")
    assert profile is not None
    assert profile.tag_mutability.mode == "IMMUTABLE"
    assert (profile.scanning.scan_type, profile.scanning.frequency) == ("ENHANCED", "CONTINUOUS_SCAN")
    rules = profile.lifecycle.desired_rules("quarantined-")
    assert [r.identity() for r in rules[:4]] == [r.identity() for r in guide_rules()]
    assert rules[4].selection.tag_prefix_list == ("quarantined-",)
    assert rules[4].selection.count_number == 90
    assert set(profile.tags.required) == {"Project", "Environment", "ManagedBy"}
    assert profile.infrastructure_as_code == "report"


def test_quarantine_retention_can_be_changed_or_turned_off() -> None:
    ninety = parse_policy(_policy({"lifecycle": {"quarantine_retention_days": 30}}))
    off = parse_policy(_policy({"lifecycle": {"quarantine_retention_days": None}}))
    assert ninety.repository_settings.profiles[0].lifecycle.desired_rules("q-")[-1].selection.count_number == 30
    assert len(off.repository_settings.profiles[0].lifecycle.desired_rules("q-")) == 4


def test_immutable_with_exclusion_for_latest() -> None:
    policy = parse_policy(_policy({"tag_mutability": {"mode": "IMMUTABLE_WITH_EXCLUSION", "exclusions": ["latest"]}}))
    assert policy.repository_settings.profiles[0].tag_mutability.exclusions == ("latest",)


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        (
            {
                "lifecycle": {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": "keep-dev",
                            "selection": {"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 5},
                        }
                    ]
                }
            },
            "keep-dev",
        ),
        (
            {
                "lifecycle": {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "selection": UNTAGGED_7 | {"countType": "imageCountMoreThan"},
                            "description": "x",
                        },
                    ]
                }
            },
            "lifecycle rule 'x'",
        ),
        (
            {
                "lifecycle": {
                    "rules": [
                        {"rulePriority": 1, "description": "a", "selection": UNTAGGED_7},
                        {"rulePriority": 1, "description": "b", "selection": UNTAGGED_7},
                    ]
                }
            },
            "more than once",
        ),
        (
            {
                "lifecycle": {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": "all",
                            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 500},
                        },
                        {"rulePriority": 2, "description": "u", "selection": UNTAGGED_7},
                    ]
                }
            },
            "highest rulePriority",
        ),
        (
            {
                "lifecycle": {
                    "rules": [
                        {"rulePriority": 1, "description": "t", "selection": UNTAGGED_7, "action": {"type": "delete"}}
                    ]
                }
            },
            "lifecycle rule 't'",
        ),
        (
            {
                "repository_policy": {
                    "statements": [{"Sid": "AllowCi", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]
                }
            },
            "AllowCi",
        ),
        (
            {
                "repository_policy": {
                    "statements": [{"Sid": "Bad Sid!", "Effect": "Allow", "Principal": "*", "Action": "ecr:*"}]
                }
            },
            "Bad Sid!",
        ),
        ({"tag_mutability": {"mode": "IMMUTABLE", "exclusions": ["latest"]}}, "exclusions"),
        ({"tag_mutability": {"mode": "IMMUTABLE_WITH_EXCLUSION"}}, "exclusions"),
        ({"scanning": {"scan_type": "BASIC", "frequency": "CONTINUOUS_SCAN"}}, "BASIC"),
        ({"tags": {"required": {"aws:owner": "x"}}}, "aws:owner"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_settings_are_rejected_when_the_policy_is_loaded(profile: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidPolicyError, match=message):
        parse_policy(_policy(profile), source="test")


def test_profile_names_are_unique() -> None:
    document = json.loads(_policy({}))
    document["repository_settings"]["profiles"].append({"name": "p", "repositories": ["*"]})
    with pytest.raises(InvalidPolicyError, match="unique"):
        parse_policy(json.dumps(document))
