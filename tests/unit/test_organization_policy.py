"""One policy for the whole organization (issue 12): Slack routes and rules may be limited to accounts and regions.
Both keys are optional and additive; a policy without them behaves exactly as before."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ecr_warden.policy.load import default_policy
from ecr_warden.policy.model import Policy, SlackRoute

PROD, SANDBOX = "111111111111", "222222222222"


def test_a_route_limited_to_accounts_and_regions_matches_only_their_decisions() -> None:
    route = SlackRoute(name="prod-tokyo", repositories=["ses-base/*"], accounts=[PROD], regions=["ap-northeast-1"])
    assert route.matches("ses-base/api", PROD, "ap-northeast-1")
    assert not route.matches("ses-base/api", SANDBOX, "ap-northeast-1")
    assert not route.matches("ses-base/api", PROD, "us-west-2")
    assert not route.matches("team-b/web", PROD, "ap-northeast-1")
    assert not route.matches("ses-base/api")  # a decision that names no account never reaches a limited route
    everywhere = SlackRoute(name="default")
    assert everywhere.matches("ses-base/api", SANDBOX, "us-west-2")
    assert everywhere.matches("ses-base/api")


@pytest.mark.parametrize(
    "bad", [{"accounts": ["12345"]}, {"accounts": []}, {"regions": ["US-EAST-1"]}, {"regions": ["evil.example"]}]
)
def test_route_scopes_are_validated(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SlackRoute(name="x", **bad)


def _policy(*rules: dict[str, Any]) -> Policy:
    return Policy.model_validate({**default_policy().model_dump(mode="json"), "rules": list(rules)})


def test_rules_limited_to_accounts_and_regions_apply_only_there() -> None:
    policy = _policy(
        {"name": "sandbox-audit", "repositories": ["*"], "accounts": [SANDBOX], "audit": True},
        {"name": "tokyo-high", "repositories": ["ses-base/*"], "regions": ["ap-northeast-1"], "block_at": "HIGH"},
        {"name": "default", "repositories": ["*"]},
    )
    assert policy.for_scope(SANDBOX, "us-east-1").rule_for("ses-base/api").name == "sandbox-audit"  # type: ignore[union-attr]
    assert policy.for_scope(PROD, "ap-northeast-1").rule_for("ses-base/api").name == "tokyo-high"  # type: ignore[union-attr]
    assert policy.for_scope(PROD, "us-west-2").rule_for("ses-base/api").name == "default"  # type: ignore[union-attr]
    only_sandbox = _policy({"name": "sandbox", "repositories": ["*"], "accounts": [SANDBOX]})
    assert only_sandbox.for_scope(PROD, "us-east-1").rule_for("ses-base/api") is None  # no rule: not governed there


def test_a_policy_without_scopes_is_the_same_policy_everywhere() -> None:
    policy = default_policy()
    assert policy.for_scope(PROD, "eu-west-1") is policy
