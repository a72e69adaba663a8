from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from ecr_warden.policy.load import InvalidPolicyError, default_policy, default_policy_text, parse_policy
from ecr_warden_tools.local.template import load_template
from tests.conftest import TEMPLATE


def test_default_policy_blocks_critical_everywhere() -> None:
    policy = default_policy()
    rule = policy.rule_for("any/repository")
    assert rule is not None
    assert rule.block_at == "CRITICAL"
    assert rule.tag_at is None
    assert rule.block_method == "quarantine"


def test_template_deploys_the_default_policy() -> None:
    deployed = load_template(TEMPLATE)["Resources"]["PolicyParameter"]["Properties"]["Value"]
    assert json.loads(deployed) == yaml.safe_load(default_policy_text())


def test_yaml_and_json_are_accepted() -> None:
    as_json = json.dumps(yaml.safe_load(default_policy_text()))
    assert parse_policy(as_json) == parse_policy(default_policy_text())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rules": []}, "rules"),
        ({"rules": [{"name": "x", "block_at": "SEVERE"}]}, "unknown severity"),
        ({"rules": [{"name": "x", "block_method": "delete"}]}, "block_method"),
        ({"rules": [{"name": "x", "surprise": 1}]}, "surprise"),
        ({"exemptions": [{"cve": "CVE-2024-1", "reason": "r", "approver": "a"}]}, "expires"),
        ({"quarantine_tag_prefix": "ecr-warden-q-"}, "prefixes"),
        ({"version": 2}, "version"),
    ],
)
def test_invalid_policy_is_rejected_with_the_field(change: dict[str, object], message: str) -> None:
    document = yaml.safe_load(default_policy_text()) | change
    with pytest.raises(InvalidPolicyError, match=message):
        parse_policy(json.dumps(document), source="test")


def test_not_a_mapping() -> None:
    with pytest.raises(InvalidPolicyError, match="mapping"):
        parse_policy("- just\n- a list\n")


def test_first_matching_rule_wins() -> None:
    policy = parse_policy(
        json.dumps(
            {
                "rules": [
                    {"name": "prod", "repositories": ["prod/*"], "block_at": "HIGH"},
                    {"name": "rest", "repositories": ["*"]},
                ]
            }
        )
    )
    assert policy.rule_for("prod/api").name == "prod"  # type: ignore[union-attr]
    assert policy.rule_for("dev/api").name == "rest"  # type: ignore[union-attr]


def test_exemption_expiry_is_enforced() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    policy = parse_policy(
        json.dumps(
            {
                "rules": [{"name": "r"}],
                "exemptions": [
                    {
                        "cve": "CVE-2024-6387",
                        "repositories": ["ses-base/*"],
                        "expires": (now + timedelta(days=1)).isoformat(),
                        "reason": "mitigated by network policy",
                        "approver": "sec-lead",
                    },
                ],
            }
        )
    )
    exemption = policy.exemptions[0]
    assert exemption.applies("CVE-2024-6387", "ses-base/api", "sha256:x", [], now)
    assert not exemption.applies("CVE-2024-6387", "other/api", "sha256:x", [], now)
    assert not exemption.applies("CVE-2024-6387", "ses-base/api", "sha256:x", [], now + timedelta(days=2))


def test_own_tags() -> None:
    policy = default_policy()
    digest = "sha256:" + "a" * 64
    assert policy.quarantine_tag(digest) == "quarantined-aaaaaaaaaaaa"
    assert policy.is_own_tag("quarantined-aaaaaaaaaaaa", digest)
    assert not policy.is_own_tag("v1.2.3", digest)


def test_an_exemption_scoped_by_tag_alone_is_refused() -> None:
    exemption = {
        "cve": "CVE-2024-6387",
        "tag": "v1.2.3",
        "expires": "2099-01-01T00:00:00Z",
        "reason": "sshd disabled",
        "approver": "ciso@example.com",
    }
    with pytest.raises(InvalidPolicyError, match="scoped by tag needs the image's digest"):
        parse_policy(json.dumps({"rules": [{"name": "r"}], "exemptions": [exemption]}))
    pinned = {**exemption, "digest": "sha256:" + "a" * 64}
    policy = parse_policy(json.dumps({"rules": [{"name": "r"}], "exemptions": [pinned]}))
    now = datetime(2026, 11, 27, tzinfo=UTC)
    assert policy.exemptions[0].applies("CVE-2024-6387", "r/x", "sha256:" + "a" * 64, ["v1.2.3"], now)
    assert not policy.exemptions[0].applies("CVE-2024-6387", "r/x", "sha256:" + "b" * 64, ["v1.2.3"], now)
