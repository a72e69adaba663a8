"""The remediation actions of the settings guard, one per setting, each declaring the IAM actions it needs (the
template grants the function exactly these plus its adapters' reads: tests/unit/test_template.py compares)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ecr_warden.repository_settings.ports import SettingsRegistry
from ecr_warden.repository_settings.state import Change, RepositoryState, Setting

Apply = Callable[[SettingsRegistry, RepositoryState, Change], None]


@dataclass(frozen=True)
class SettingAction:
    setting: Setting
    permissions: frozenset[str]
    apply: Apply
    registry_level: bool = False  # acts on the whole registry: granted only when registry writes are enabled


def _mutability(registry: SettingsRegistry, repo: RepositoryState, change: Change) -> None:
    registry.set_mutability(repo.name, str(change.payload["mode"]), list(change.payload["exclusions"]))


def _lifecycle(registry: SettingsRegistry, repo: RepositoryState, change: Change) -> None:
    registry.put_lifecycle_policy(repo.name, str(change.payload["text"]))


def _policy(registry: SettingsRegistry, repo: RepositoryState, change: Change) -> None:
    registry.set_repository_policy(repo.name, str(change.payload["text"]))


def _tags(registry: SettingsRegistry, repo: RepositoryState, change: Change) -> None:
    registry.tag(repo.arn, dict(change.payload["tags"]))


def _registry_scanning(registry: SettingsRegistry, repo: RepositoryState, change: Change) -> None:
    registry.put_registry_scanning(change.payload)


ACTIONS: dict[Setting, SettingAction] = {
    a.setting: a
    for a in (
        SettingAction("tag_mutability", frozenset({"ecr:PutImageTagMutability"}), _mutability),
        SettingAction("lifecycle_policy", frozenset({"ecr:PutLifecyclePolicy"}), _lifecycle),
        SettingAction("repository_policy", frozenset({"ecr:SetRepositoryPolicy"}), _policy),
        SettingAction("tags", frozenset({"ecr:TagResource"}), _tags),
        SettingAction("report_tag", frozenset({"ecr:TagResource"}), _tags),
        SettingAction(
            "registry_scanning", frozenset({"ecr:PutRegistryScanningConfiguration"}), _registry_scanning, True
        ),
    )
}


def permissions(registry_level: bool) -> frozenset[str]:
    """What the actions need together; registry-level ones only when enabled."""
    return frozenset().union(*(a.permissions for a in ACTIONS.values() if registry_level or not a.registry_level))
