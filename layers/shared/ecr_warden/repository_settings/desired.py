"""The `repository_settings` section of the policy: desired state per repository pattern. Defaults follow the
users' ECR operations guide. Invalid lifecycle rules or policy statements are rejected when the policy is loaded,
naming the profile and the rule."""

from __future__ import annotations

import fnmatch
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ecr_warden.repository_settings.lifecycle import LifecycleRule, check_rule_set, guide_rules, quarantine_rule

STRICT = ConfigDict(extra="forbid", frozen=True)
Mutability = Literal["IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE", "MUTABLE_WITH_EXCLUSION"]
NONCOMPLIANT_TAG = "ecr-warden:noncompliant"  # put on a repository whose gap ecr-warden must not fix (encryption)


class TagMutability(BaseModel):
    model_config = STRICT

    # IMMUTABLE rejects a push of an existing tag: CI that pushes `latest` on every build (as the guide's does)
    # needs IMMUTABLE_WITH_EXCLUSION with exclusions: ["latest"].
    mode: Mutability = "IMMUTABLE"
    exclusions: tuple[str, ...] = Field(default=(), max_length=5)

    @model_validator(mode="after")
    def _exclusions_with_exclusion_modes(self) -> TagMutability:
        if self.mode.endswith("_WITH_EXCLUSION") != bool(self.exclusions):
            raise ValueError("exclusions are required with *_WITH_EXCLUSION modes, and only with them")
        return self


class Scanning(BaseModel):
    """Registry-level scanning that must cover the repository; the repository-level scanOnPush is deprecated and
    only reported."""

    model_config = STRICT

    scan_type: Literal["ENHANCED", "BASIC"] = "ENHANCED"
    frequency: Literal["CONTINUOUS_SCAN", "SCAN_ON_PUSH"] = "CONTINUOUS_SCAN"

    @model_validator(mode="after")
    def _basic_scans_on_push(self) -> Scanning:
        if self.scan_type == "BASIC" and self.frequency != "SCAN_ON_PUSH":
            raise ValueError("BASIC scanning supports only the SCAN_ON_PUSH frequency")
        return self


class Lifecycle(BaseModel):
    model_config = STRICT

    mode: Literal["replace", "ensure"] = "ensure"
    rules: tuple[LifecycleRule, ...] = Field(default_factory=lambda: tuple(guide_rules()))
    # The guide's rules never expire a quarantined image (it keeps only its quarantine tag): this rule does.
    # null: quarantined images are kept until someone deletes them.
    quarantine_retention_days: int | None = Field(90, ge=1, le=3650)

    @field_validator("rules", mode="before")
    @classmethod
    def _each_rule_named(cls, rules: Any) -> Any:
        if not isinstance(rules, list | tuple):
            return rules
        checked = []
        for n, rule in enumerate(rules):
            try:
                checked.append(rule if isinstance(rule, LifecycleRule) else LifecycleRule.model_validate(rule))
            except ValueError as exc:
                name = rule.get("description") or rule.get("rulePriority") if isinstance(rule, dict) else n
                raise ValueError(f"lifecycle rule {name!r}: {exc}") from None
        return checked

    @model_validator(mode="after")
    def _valid_together(self) -> Lifecycle:
        try:
            check_rule_set(list(self.rules))
        except ValueError as exc:
            raise ValueError(f"lifecycle rules: {exc}") from None
        return self

    def desired_rules(self, quarantine_prefix: str) -> list[LifecycleRule]:
        rules = list(self.rules)
        if self.quarantine_retention_days is not None:
            last = max((r.rule_priority for r in rules if r.selection.tag_status != "any"), default=0)
            rules.append(quarantine_rule(quarantine_prefix, self.quarantine_retention_days, last + 1))
            rules = [
                r.model_copy(update={"rule_priority": r.rule_priority + 1}) if r.selection.tag_status == "any" else r
                for r in rules
            ]
        return rules


class Statement(BaseModel):
    """A statement the policy adds to the baseline; validated as IAM would, so a typo fails at load time."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    sid: str = Field(alias="Sid", pattern=r"^[A-Za-z0-9]{1,100}$")
    effect: Literal["Allow", "Deny"] = Field(alias="Effect")
    principal: str | dict[str, str | list[str]] = Field(alias="Principal")
    action: str | list[str] = Field(alias="Action")
    condition: dict[str, dict[str, Any]] | None = Field(None, alias="Condition")

    @field_validator("action")
    @classmethod
    def _ecr_actions(cls, action: str | list[str]) -> str | list[str]:
        for name in [action] if isinstance(action, str) else action:
            if not name.startswith("ecr:") or len(name) < 5:
                raise ValueError(f"action {name!r}: a repository policy grants ecr: actions only")
        return action

    def document(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class RepositoryPolicy(BaseModel):
    model_config = STRICT

    baseline: bool = True
    organization_id: str | None = Field(None, pattern=r"^o-[a-z0-9]{10,32}$")
    statements: tuple[Statement, ...] = ()  # more statements kept in every matching repository, merged by Sid

    @field_validator("statements", mode="before")
    @classmethod
    def _each_statement_named(cls, statements: Any) -> Any:
        if not isinstance(statements, list | tuple):
            return statements
        checked = []
        for n, statement in enumerate(statements):
            try:
                checked.append(Statement.model_validate(statement))
            except ValueError as exc:
                name = statement.get("Sid", n) if isinstance(statement, dict) else n
                raise ValueError(f"repository policy statement {name!r}: {exc}") from None
        return checked


class Tags(BaseModel):
    model_config = STRICT

    # Required keys and the value used when the team set none; {namespace} is the repository's first path segment,
    # {repository} its full name. A value the team set is kept.
    required: dict[str, str] = Field(
        default_factory=lambda: {"Project": "{namespace}", "Environment": "unassigned", "ManagedBy": "ecr-warden"}
    )

    @field_validator("required")
    @classmethod
    def _aws_tag_shape(cls, required: dict[str, str]) -> dict[str, str]:
        for key, value in required.items():
            if not 1 <= len(key) <= 128 or key.startswith("aws:") or len(value) > 256:
                raise ValueError(f"tag {key!r}: keys 1-128 characters, not aws:, values up to 256")
        return required

    def values_for(self, repository: str) -> dict[str, str]:
        namespace = repository.split("/", 1)[0]
        return {
            k: v.replace("{namespace}", namespace).replace("{repository}", repository) for k, v in self.required.items()
        }


class Encryption(BaseModel):
    """Set only at creation: a gap is reported (tagged, announced, recorded), never fixed by recreating."""

    model_config = STRICT

    require_customer_managed_key: bool = True
    kms_keys: tuple[str, ...] = ()  # allowed key ARNs; empty: any customer-managed key


class SettingsProfile(BaseModel):
    model_config = STRICT

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    repositories: list[str] = Field(min_length=1)
    tag_mutability: TagMutability = Field(default_factory=TagMutability)
    scanning: Scanning = Field(default_factory=Scanning)
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    repository_policy: RepositoryPolicy = Field(default_factory=RepositoryPolicy)
    tags: Tags = Field(default_factory=Tags)
    encryption: Encryption = Field(default_factory=Encryption)
    # report: a repository managed by CloudFormation or Terraform is reported, not changed; enforce: changed too
    infrastructure_as_code: Literal["report", "enforce"] = "report"
    # A replication rule covering the repository without deleteReplication: a quarantine here leaves the replicas'
    # tags deployable (ECR replicates tag removals only with it). report: say so; ignore: the copies are meant to stay.
    replication_deletes: Literal["report", "ignore"] = "report"

    def matches(self, repository: str) -> bool:
        return any(fnmatch.fnmatchcase(repository, pattern) for pattern in self.repositories)


class RepositorySettings(BaseModel):
    model_config = STRICT

    # Repositories no profile matches are never touched. The first matching profile wins.
    profiles: list[SettingsProfile] = Field(
        default_factory=lambda: [SettingsProfile(name="default", repositories=["*"])]
    )
    # Registry-level writes (PutRegistryScanningConfiguration) affect every repository: reported unless enabled.
    registry_scanning: Literal["report", "enforce"] = "report"

    @model_validator(mode="after")
    def _valid_rule_sets(self) -> RepositorySettings:
        names = [p.name for p in self.profiles]
        if len(names) != len(set(names)):
            raise ValueError("repository_settings profile names must be unique")
        for profile in self.profiles:
            try:
                check_rule_set(profile.lifecycle.desired_rules("quarantined-"))
            except ValueError as exc:
                raise ValueError(f"profile {profile.name!r}: lifecycle: {exc}") from None
        return self

    def profile_for(self, repository: str) -> SettingsProfile | None:
        return next((p for p in self.profiles if p.matches(repository)), None)
