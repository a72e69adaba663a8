"""ECR lifecycle rules: the model (validated as ECR validates them), the guide's defaults, and the merge of the
desired rules into a repository's own. Pure."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_RULE = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
MAX_PRIORITY = 999


class Selection(BaseModel):
    model_config = _RULE

    tag_status: Literal["tagged", "untagged", "any"] = Field(alias="tagStatus")
    tag_prefix_list: tuple[str, ...] | None = Field(None, alias="tagPrefixList", min_length=1)
    tag_pattern_list: tuple[str, ...] | None = Field(None, alias="tagPatternList", min_length=1)
    count_type: Literal["imageCountMoreThan", "sinceImagePushed"] = Field(alias="countType")
    count_unit: Literal["days"] | None = Field(None, alias="countUnit")
    count_number: int = Field(alias="countNumber", ge=1)

    @model_validator(mode="after")
    def _as_ecr_validates(self) -> Selection:
        tagged_by = [x for x in (self.tag_prefix_list, self.tag_pattern_list) if x is not None]
        if self.tag_status == "tagged" and len(tagged_by) != 1:
            raise ValueError("tagStatus tagged needs exactly one of tagPrefixList or tagPatternList")
        if self.tag_status != "tagged" and tagged_by:
            raise ValueError(f"tagStatus {self.tag_status} takes no tagPrefixList or tagPatternList")
        if (self.count_type == "sinceImagePushed") != (self.count_unit == "days"):
            raise ValueError("countUnit days goes with countType sinceImagePushed, and only with it")
        return self


class RuleAction(BaseModel):
    model_config = _RULE

    type: Literal["expire"]


class LifecycleRule(BaseModel):
    model_config = _RULE

    rule_priority: int = Field(alias="rulePriority", ge=1, le=MAX_PRIORITY)
    description: str | None = Field(None, max_length=256)
    selection: Selection
    action: RuleAction = RuleAction(type="expire")

    def identity(self) -> str:
        """What a rule does, whatever its priority or description: two rules that expire the same are one."""
        return json.dumps(
            self.selection.model_dump(by_alias=True, exclude_none=True) | {"a": self.action.type}, sort_keys=True
        )

    def ecr(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


def _rule(priority: int, description: str, **selection: Any) -> LifecycleRule:
    return LifecycleRule.model_validate({"rulePriority": priority, "description": description, "selection": selection})


def guide_rules() -> list[LifecycleRule]:
    """The four rules of the users' ECR operations guide."""
    return [
        _rule(
            1,
            "untagged images: expire 7 days after push",
            tagStatus="untagged",
            countType="sinceImagePushed",
            countUnit="days",
            countNumber=7,
        ),
        _rule(
            2,
            "dev-/feature- images: keep the latest 10",
            tagStatus="tagged",
            tagPrefixList=["dev-", "feature-"],
            countType="imageCountMoreThan",
            countNumber=10,
        ),
        _rule(
            3,
            "staging-/test- images: expire 30 days after push",
            tagStatus="tagged",
            tagPrefixList=["staging-", "test-"],
            countType="sinceImagePushed",
            countUnit="days",
            countNumber=30,
        ),
        _rule(
            4,
            "release (v) images: keep the latest 50",
            tagStatus="tagged",
            tagPrefixList=["v"],
            countType="imageCountMoreThan",
            countNumber=50,
        ),
    ]


def quarantine_rule(prefix: str, days: int, priority: int) -> LifecycleRule:
    return _rule(
        priority,
        f"ecr-warden quarantine: expire {days} days after push",
        tagStatus="tagged",
        tagPrefixList=[prefix],
        countType="sinceImagePushed",
        countUnit="days",
        countNumber=days,
    )


def check_rule_set(rules: list[LifecycleRule]) -> None:
    """What ECR checks across rules: distinct priorities, and a tagStatus `any` rule evaluated last."""
    priorities = [rule.rule_priority for rule in rules]
    clashes = sorted({p for p in priorities if priorities.count(p) > 1})
    if clashes:
        raise ValueError(f"rulePriority used more than once: {clashes}")
    last = max(priorities, default=0)
    for rule in rules:
        if rule.selection.tag_status == "any" and rule.rule_priority != last:
            raise ValueError(f"rule {rule.rule_priority} (tagStatus any) must have the highest rulePriority")


def parse_policy_text(text: str | None) -> list[LifecycleRule] | None:
    """A repository's lifecycle policy as ECR returns it; None when there is none. A rule this model does not know
    (a newer ECR feature) is kept as it is by raising: the caller then leaves the policy alone and reports it."""
    if text is None:
        return None
    document = json.loads(text)
    return sorted((LifecycleRule.model_validate(r) for r in document.get("rules") or []), key=lambda r: r.rule_priority)


def policy_text(rules: list[LifecycleRule]) -> str:
    return json.dumps({"rules": [r.ecr() for r in sorted(rules, key=lambda r: r.rule_priority)]}, sort_keys=True)


def merge(
    desired: list[LifecycleRule], actual: list[LifecycleRule] | None, mode: Literal["replace", "ensure"]
) -> list[LifecycleRule]:
    """The rules the repository should have. `replace`: the desired rules exactly. `ensure`: the repository's own
    rules, plus each desired rule it lacks (same selection and action, any priority). Priorities are then made
    distinct deterministically: ordered by priority, a desired rule before a team rule of the same priority, and
    `any` rules last; renumbered 1..n in that order."""
    if mode == "replace" or not actual:
        return sorted(desired, key=lambda r: r.rule_priority)
    have = {rule.identity() for rule in actual}
    missing = [rule for rule in desired if rule.identity() not in have]
    if not missing:
        return list(actual)
    ordered = sorted(
        [(r, 0) for r in missing] + [(r, 1) for r in actual],
        key=lambda pair: (pair[0].selection.tag_status == "any", pair[0].rule_priority, pair[1], pair[0].identity()),
    )
    return [rule.model_copy(update={"rule_priority": n}) for n, (rule, _) in enumerate(ordered, start=1)]


def same_rules(a: list[LifecycleRule] | None, b: list[LifecycleRule] | None) -> bool:
    """Equal as ECR applies them: same rules at the same priorities (descriptions don't expire anything)."""
    if a is None or b is None:
        return a is b
    return _applied(a) == _applied(b)


def _applied(rules: list[LifecycleRule]) -> list[tuple[int, str]]:
    return sorted((r.rule_priority, r.identity()) for r in rules)
