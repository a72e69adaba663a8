"""Desired against actual: the changes to make and the gaps to report. Pure: no AWS call, no clock."""

from __future__ import annotations

import json
from dataclasses import replace

from ecr_warden.repository_settings import lifecycle, repo_policy
from ecr_warden.repository_settings.desired import NONCOMPLIANT_TAG, Scanning, SettingsProfile
from ecr_warden.repository_settings.state import (
    Change,
    Plan,
    RegistryScanning,
    ReplicationRule,
    RepositoryState,
    ScanRule,
)

MAX_FILTERS = 100  # ECR: repository filters per scanning rule


def evaluate(
    profile: SettingsProfile,
    actual: RepositoryState,
    registry: RegistryScanning | None,
    quarantine_prefix: str,
    registry_writes: bool = False,
) -> Plan:
    changes: list[Change] = []
    reports: list[str] = []
    for check in (_mutability, _tags, _repository_policy):
        change, report = check(profile, actual)
        changes += [change] if change else []
        reports += report
    change, report = _lifecycle(profile, actual, quarantine_prefix)
    changes += [change] if change else []
    reports += report
    encryption_gap = _encryption_gap(profile, actual)
    if encryption_gap:
        reports.append(encryption_gap)
        if actual.tags.get(NONCOMPLIANT_TAG) != "encryption":
            changes.append(
                Change(
                    "report_tag",
                    actual.tags.get(NONCOMPLIANT_TAG),
                    "encryption",
                    {"tags": {NONCOMPLIANT_TAG: "encryption"}},
                )
            )
    plan = Plan(actual.name, profile.name, tuple(changes), tuple(reports), _scan_notes(actual))
    if registry is not None:
        plan = _with_scanning(plan, profile.scanning, registry, registry_writes)
    owner = actual.managed_by()
    if owner and profile.infrastructure_as_code == "report" and plan.changes:
        left = tuple(f"{c.setting}: {c.before} -> {c.after} (not changed: managed by {owner})" for c in plan.changes)
        plan = replace(plan, changes=(), reports=plan.reports + left)
    return plan


def _mutability(profile: SettingsProfile, actual: RepositoryState) -> tuple[Change | None, list[str]]:
    want = profile.tag_mutability
    if actual.mutability == want.mode and set(actual.mutability_exclusions) == set(want.exclusions):
        return None, []
    before = _show_mutability(actual.mutability, actual.mutability_exclusions)
    after = _show_mutability(want.mode, want.exclusions)
    return Change("tag_mutability", before, after, {"mode": want.mode, "exclusions": list(want.exclusions)}), []


def _show_mutability(mode: str, exclusions: tuple[str, ...]) -> str:
    return f"{mode} (except {', '.join(exclusions)})" if exclusions else mode


def _tags(profile: SettingsProfile, actual: RepositoryState) -> tuple[Change | None, list[str]]:
    missing = {k: v for k, v in profile.tags.values_for(actual.name).items() if k not in actual.tags}
    if not missing:
        return None, []
    before = ", ".join(f"{k}=-" for k in missing)
    after = ", ".join(f"{k}={v}" for k, v in missing.items())
    return Change("tags", before, after, {"tags": missing}), []


def _repository_policy(profile: SettingsProfile, actual: RepositoryState) -> tuple[Change | None, list[str]]:
    settings = profile.repository_policy
    wanted = repo_policy.baseline(settings.organization_id) if settings.baseline else []
    wanted += [s.document() for s in settings.statements]
    try:
        document = repo_policy.parse(actual.policy_text)
    except ValueError:
        return None, ["repository policy is not valid JSON: left as it is"]
    reports = [f"repository policy statement {sid} allows everyone" for sid in repo_policy.public_grants(document)]
    if not wanted or repo_policy.has_baseline(document, wanted):
        return None, reports
    merged = repo_policy.merge(document, wanted)
    present = sorted(s["Sid"] for s in wanted if repo_policy.has_baseline(document, [s]))
    missing = sorted(s["Sid"] for s in wanted if s["Sid"] not in present)
    before = "no policy" if document is None else f"without {', '.join(missing)}"
    return Change("repository_policy", before, f"with {', '.join(missing)}", {"text": json.dumps(merged)}), reports


def _lifecycle(profile: SettingsProfile, actual: RepositoryState, prefix: str) -> tuple[Change | None, list[str]]:
    settings = profile.lifecycle
    desired = settings.desired_rules(prefix)
    try:
        current = lifecycle.parse_policy_text(actual.lifecycle_text)
    except ValueError:
        if settings.mode == "ensure":
            return None, ["lifecycle policy has rules ecr-warden does not model: left as it is (mode ensure)"]
        current = None
    target = lifecycle.merge(desired, current, settings.mode)
    try:
        lifecycle.check_rule_set(target)
    except ValueError as exc:
        return None, [f"lifecycle policy not applied: {exc}"]
    if current is not None and lifecycle.same_rules(target, current):
        return None, []
    before = "none" if actual.lifecycle_text is None else f"{len(current or [])} rule(s)"
    return Change("lifecycle_policy", before, f"{len(target)} rule(s)", {"text": lifecycle.policy_text(target)}), []


def _encryption_gap(profile: SettingsProfile, actual: RepositoryState) -> str | None:
    want = profile.encryption
    if not want.require_customer_managed_key:
        return None
    if actual.encryption_type not in ("KMS", "KMS_DSSE") or not actual.kms_key:
        return (
            f"encryption is {actual.encryption_type} without a customer-managed KMS key; it can only be set "
            "when the repository is created (not recreated by ecr-warden)"
        )
    if actual.kms_key_manager == "AWS":
        return "encrypted with the AWS-managed key aws/ecr, not a customer-managed key (set at creation only)"
    if want.kms_keys and actual.kms_key not in want.kms_keys:
        return f"encrypted with KMS key {actual.kms_key}, not one of the policy's keys (set at creation only)"
    return None


def _scan_notes(actual: RepositoryState) -> tuple[str, ...]:
    if actual.scan_on_push:
        return ("repository-level scanOnPush is set; it is deprecated and the registry configuration decides",)
    return ()


def _with_scanning(plan: Plan, want: Scanning, registry: RegistryScanning, writes: bool) -> Plan:
    have = registry.frequency_for(plan.repository) if registry.scan_type == want.scan_type else None
    if have == want.frequency:
        return plan
    before = f"{registry.scan_type} {have or 'not covered'}"
    after = f"{want.scan_type} {want.frequency}"
    if not writes:
        return replace(
            plan,
            reports=(
                *plan.reports,
                f"registry scanning for this repository is {before}, policy "
                f"wants {after} (registry-level writes are not enabled)",
            ),
        )
    target = registry_target(registry, want, plan.repository)
    return replace(plan, changes=(*plan.changes, Change("registry_scanning", before, after, target.ecr())))


def registry_target(actual: RegistryScanning, want: Scanning, repository: str) -> RegistryScanning:
    """The registry configuration with the repository covered at the wanted frequency: the repository's name is
    added as a filter to the rule of that frequency (created if missing); other rules stay as they are. Switching
    to BASIC drops CONTINUOUS_SCAN rules, which BASIC does not have."""
    rules = [r for r in actual.rules if actual.scan_type == want.scan_type or r.frequency == "SCAN_ON_PUSH"]
    rules = [ScanRule(r.frequency, tuple(f for f in r.filters if f != repository)) for r in rules]
    for n, rule in enumerate(rules):
        if rule.frequency == want.frequency:
            rules[n] = ScanRule(rule.frequency, (*rule.filters, repository)[-MAX_FILTERS:])
            break
    else:
        rules.append(ScanRule(want.frequency, (repository,)))
    return RegistryScanning(want.scan_type, tuple(r for r in rules if r.filters))


def with_replication(plan: Plan, profile: SettingsProfile, rules: tuple[ReplicationRule, ...] | None) -> Plan:
    """Report every replication rule that copies the repository elsewhere without deleteReplication: the gate's
    quarantine removes tags here only, and the copies keep theirs (docs/ORGANIZATION.md, replicas). Never written:
    the replication configuration is the whole registry's, and its owners decide."""
    if profile.replication_deletes == "ignore" or not rules:
        return plan
    gaps = [
        f"replication rule {n} copies it to {', '.join(rule.destinations)} without deleteReplication: a quarantine "
        "here leaves the copies' tags deployable (enable deleteReplication, and guard the destination registries)"
        for n, rule in enumerate(rules, start=1)
        if rule.covers(plan.repository) and not rule.deletes and rule.destinations
    ]
    return replace(plan, reports=(*plan.reports, *gaps)) if gaps else plan
