"""ECR lifecycle policy evaluation, as ECR's lifecycle preview reports it (pure: no moto, no clock).

What ECR documents and this follows:
- rules are evaluated from the lowest `rulePriority` up; an image is expired (or transitioned) by at most one
  rule, and an image that matches the tagging requirements of a rule cannot be acted on by a rule of lower
  priority (a higher `rulePriority` value), even if the first rule's count keeps it;
- `tagStatus`: `tagged` (with `tagPrefixList` and/or `tagPatternList`; with several entries, an image must have a
  tag for every entry), `untagged`, or `any` (which must be the rule with the highest `rulePriority`);
- `countType`: `imageCountMoreThan` keeps the newest `countNumber` matching images, `sinceImagePushed` acts on
  images pushed more than `countNumber` days ago (`sinceImagePulled` and `sinceImageTransitioned` are evaluated on
  the push time: the local registry records no pulls or transitions).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

TAG_STATUSES = ("tagged", "untagged", "any")
COUNT_TYPES = ("imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned")
ACTION_TYPES = ("expire", "transition")


class LifecyclePolicyError(ValueError):
    """The policy text is not a valid lifecycle policy (ECR answers InvalidParameterException)."""


@dataclass(frozen=True)
class ImageRecord:
    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime


@dataclass(frozen=True)
class LifecycleRule:
    priority: int
    tag_status: str
    prefixes: tuple[str, ...]
    patterns: tuple[str, ...]
    count_type: str
    count_number: int
    action: str  # EXPIRE | TRANSITION, as the preview reports it
    target_storage_class: str | None = None

    def selects(self, image: ImageRecord) -> bool:
        if self.tag_status == "any":
            return True
        if self.tag_status == "untagged":
            return not image.tags
        if not image.tags:
            return False
        prefixes_met = all(any(tag.startswith(prefix) for tag in image.tags) for prefix in self.prefixes)
        patterns_met = all(any(_wildcard(pattern).fullmatch(tag) for tag in image.tags) for pattern in self.patterns)
        return prefixes_met and patterns_met

    def acts_on(self, candidates: Sequence[ImageRecord], now: datetime) -> list[ImageRecord]:
        if self.count_type == "imageCountMoreThan":
            newest_first = sorted(candidates, key=lambda image: image.pushed_at, reverse=True)
            return newest_first[self.count_number :]
        cutoff = now - timedelta(days=self.count_number)
        return [image for image in candidates if image.pushed_at < cutoff]


@dataclass(frozen=True)
class PreviewResult:
    image: ImageRecord
    rule: LifecycleRule


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def parse_policy(text: str) -> list[LifecycleRule]:
    """The rules of a lifecycle policy, sorted by priority; LifecyclePolicyError names what is wrong."""
    try:
        document = json.loads(text)
    except ValueError:
        raise LifecyclePolicyError("Lifecycle policy validation failure: the policy is not valid JSON") from None
    rules = document.get("rules") if isinstance(document, dict) else None
    if not isinstance(rules, list) or not rules:
        raise LifecyclePolicyError("Lifecycle policy validation failure: 'rules' must be a non-empty list")
    parsed = sorted((_rule(raw) for raw in rules), key=lambda rule: rule.priority)
    priorities = [rule.priority for rule in parsed]
    if len(set(priorities)) != len(priorities):
        raise LifecyclePolicyError("Lifecycle policy validation failure: rulePriority values must be unique")
    if any(rule.tag_status == "any" for rule in parsed[:-1]):
        raise LifecyclePolicyError(
            "Lifecycle policy validation failure: a rule with tagStatus 'any' must have the highest rulePriority"
        )
    return parsed


def _rule(raw: Any) -> LifecycleRule:
    if not isinstance(raw, dict):
        raise LifecyclePolicyError("Lifecycle policy validation failure: each rule must be an object")
    selection = raw.get("selection") or {}
    action = raw.get("action") or {}
    priority: Any = raw.get("rulePriority")
    count_number: Any = selection.get("countNumber")
    tag_status, count_type = selection.get("tagStatus"), selection.get("countType")
    problems = [
        "rulePriority must be a positive integer" if not _positive_int(priority) else "",
        f"tagStatus must be one of {', '.join(TAG_STATUSES)}" if tag_status not in TAG_STATUSES else "",
        f"countType must be one of {', '.join(COUNT_TYPES)}" if count_type not in COUNT_TYPES else "",
        "countNumber must be a positive integer" if not _positive_int(count_number) else "",
        f"action.type must be one of {', '.join(ACTION_TYPES)}" if action.get("type") not in ACTION_TYPES else "",
    ]
    prefixes = tuple(selection.get("tagPrefixList") or ())
    patterns = tuple(selection.get("tagPatternList") or ())
    problems += _selection_problems(tag_status, prefixes, patterns, count_type, selection.get("countUnit"))
    found = [problem for problem in problems if problem]
    if found:
        raise LifecyclePolicyError(f"Lifecycle policy validation failure: rule {priority}: {found[0]}")
    return LifecycleRule(
        priority=int(priority),
        tag_status=str(tag_status),
        prefixes=prefixes,
        patterns=patterns,
        count_type=str(count_type),
        count_number=int(count_number),
        action=str(action["type"]).upper(),
        target_storage_class=action.get("targetStorageClass"),
    )


def _selection_problems(
    tag_status: Any, prefixes: tuple[str, ...], patterns: tuple[str, ...], count_type: Any, count_unit: Any
) -> list[str]:
    problems = []
    if tag_status == "tagged" and bool(prefixes) == bool(patterns):
        problems.append("tagStatus tagged needs exactly one of tagPrefixList or tagPatternList")
    if tag_status != "tagged" and (prefixes or patterns):
        problems.append(f"tagStatus {tag_status} takes no tagPrefixList or tagPatternList")
    if any(pattern.count("*") > 4 for pattern in patterns):
        problems.append("a tagPatternList entry has at most 4 wildcards")
    if (count_type != "imageCountMoreThan") != (count_unit == "days"):
        problems.append("countUnit 'days' goes with the since* count types, and only with them")
    return problems


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def evaluate(rules: Sequence[LifecycleRule], images: Iterable[ImageRecord], now: datetime) -> list[PreviewResult]:
    """What the policy would do to the images now, in rule order."""
    remaining = list(images)
    results: list[PreviewResult] = []
    for rule in rules:
        matched = [image for image in remaining if rule.selects(image)]
        results.extend(PreviewResult(image, rule) for image in rule.acts_on(matched, now))
        claimed = {image.digest for image in matched}
        remaining = [image for image in remaining if image.digest not in claimed]
    return results
