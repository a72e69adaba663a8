"""Repository creation templates: ECR applies one to the repositories it creates itself (pull through cache,
replication, create on push). Which template covers a repository, and whether it matches the policy. Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ecr_warden.repository_settings import lifecycle, repo_policy
from ecr_warden.repository_settings.desired import SettingsProfile

# creation_path -> ECR's appliedFor value
APPLIED_FOR = {
    "pull_through_cache": "PULL_THROUGH_CACHE",
    "replication": "REPLICATION",
    "create_on_push": "CREATE_ON_PUSH",
}


def covering(templates: Sequence[dict[str, Any]], repository: str, path: str) -> dict[str, Any] | None:
    """The template ECR uses for the repository: the longest prefix it starts with (`prefix/`), else ROOT; only
    templates that apply to the creation path."""
    scenario = APPLIED_FOR.get(path)
    usable = [t for t in templates if scenario in (t.get("appliedFor") or [])]
    named = [t for t in usable if repository.startswith(str(t.get("prefix", "")).rstrip("/") + "/")]
    if named:
        return max(named, key=lambda t: len(str(t["prefix"])))
    return next((t for t in usable if t.get("prefix") == "ROOT"), None)


def differences(template: dict[str, Any], profile: SettingsProfile, quarantine_prefix: str) -> list[str]:
    """What in the template differs from the policy (empty: it matches)."""
    found = []
    want = profile.tag_mutability
    exclusions = {f.get("filter") for f in template.get("imageTagMutabilityExclusionFilters") or []}
    if template.get("imageTagMutability", "MUTABLE") != want.mode or exclusions != set(want.exclusions):
        found.append(f"tag mutability {template.get('imageTagMutability', 'MUTABLE')}, policy {want.mode}")
    try:
        rules = lifecycle.parse_policy_text(template.get("lifecyclePolicy"))
    except ValueError:
        rules = None
    desired = profile.lifecycle.desired_rules(quarantine_prefix)
    if rules is None or lifecycle.merge(desired, rules, "ensure") != rules:
        found.append("lifecycle policy lacks rules the policy wants")
    tags = {t.get("Key") for t in template.get("resourceTags") or []}
    if missing := sorted(set(profile.tags.required) - tags):
        found.append(f"resource tags lack {', '.join(missing)}")
    found += _policy_gaps(template, profile)
    encryption = template.get("encryptionConfiguration") or {}
    if profile.encryption.require_customer_managed_key and not encryption.get("kmsKey"):
        found.append(f"encryption {encryption.get('encryptionType', 'AES256')} without a customer-managed key")
    return found


def _policy_gaps(template: dict[str, Any], profile: SettingsProfile) -> list[str]:
    settings = profile.repository_policy
    wanted = repo_policy.baseline(settings.organization_id) if settings.baseline else []
    wanted += [s.document() for s in settings.statements]
    try:
        document = repo_policy.parse(template.get("repositoryPolicy"))
    except (ValueError, json.JSONDecodeError):
        return ["repository policy is not valid JSON"]
    return [] if repo_policy.has_baseline(document, wanted) else ["repository policy lacks the baseline statements"]


def note(template: dict[str, Any] | None, profile: SettingsProfile, path: str, quarantine_prefix: str) -> str:
    if template is None:
        return f"no repository creation template applies to {path}: ECR created it with its defaults"
    gaps = differences(template, profile, quarantine_prefix)
    name = f"repository creation template {template.get('prefix')!r}"
    return f"{name} matches the policy" if not gaps else f"{name} differs from the policy: {'; '.join(gaps)}"
