"""The policy document, validated by pydantic. See docs/policy.md for the format."""

from __future__ import annotations

import fnmatch
import secrets
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from ecr_warden.domain.severity import SEVERITY_RANK
from ecr_warden.repository_settings.desired import RepositorySettings


def _severity(value: str | None) -> str | None:
    if value is None:
        return None
    upper = value.upper()
    if upper not in SEVERITY_RANK:
        raise ValueError(f"unknown severity {value!r}; use one of {', '.join(SEVERITY_RANK)}")
    return upper


Severity = Annotated[str, AfterValidator(_severity)]
# defer_build: these models are built into Policy's validator when a policy is first validated (each function's first
# decision), not each on its own at import; one used alone is built at its first use (docs/PERFORMANCE.md, (f)).
STRICT = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Conditions(BaseModel):
    """Extra requirements a finding must meet to count against the image (all that are set must hold)."""

    model_config = STRICT

    fix_available: bool | None = None
    exploit_available: bool | None = None
    min_cvss: float | None = Field(None, ge=0, le=10)


class Rule(BaseModel):
    model_config = STRICT

    name: str = Field(min_length=1, max_length=64)
    repositories: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    block_at: Severity | None = "CRITICAL"
    tag_at: Severity | None = None
    conditions: Conditions = Field(default_factory=Conditions)
    block_method: Literal["quarantine", "archive"] = "quarantine"
    audit: bool = False
    # Organization mode: the rule applies only to images in these accounts / regions (None: any). The gate binds
    # the policy to the image's account and region (Policy.for_scope) before it looks a rule up.
    accounts: list[Annotated[str, Field(pattern=r"^\d{12}$")]] | None = Field(None, min_length=1)
    regions: list[Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]] | None = Field(None, min_length=1)

    def matches(self, repository: str) -> bool:
        return any(fnmatch.fnmatchcase(repository, pattern) for pattern in self.repositories)

    def applies_in(self, account: str, region: str) -> bool:
        return (self.accounts is None or account in self.accounts) and (self.regions is None or region in self.regions)


class Exemption(BaseModel):
    """A CVE accepted for a while. Expiry is mandatory and enforced: an expired exemption stops applying."""

    model_config = STRICT

    cve: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{2,80}$")
    repositories: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    digest: str | None = None
    tag: str | None = None
    expires: AwareDatetime
    reason: str = Field(min_length=3)
    approver: str = Field(min_length=2)

    @model_validator(mode="after")
    def _not_by_tag_alone(self) -> Exemption:
        # Whoever can push chooses tags: a tag alone would exempt any image pushed under that name.
        if self.tag is not None and self.digest is None:
            raise ValueError("an exemption scoped by tag needs the image's digest too (anyone who can push picks tags)")
        return self

    def applies(self, cve: str, repository: str, digest: str, tags: list[str], now: datetime) -> bool:
        return (
            now < self.expires
            and self.cve.upper() == cve.upper()
            and any(fnmatch.fnmatchcase(repository, pattern) for pattern in self.repositories)
            and (self.digest is None or self.digest == digest)
            and (self.tag is None or self.tag in tags)
        )


class SlackRoute(BaseModel):
    """Where Slack messages for some repositories go. Every route whose patterns match gets the message."""

    model_config = STRICT

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    repositories: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    min_severity: Severity | None = None
    # Secrets Manager secret (ARN or name) holding {"url": "https://hooks.slack.com/..."}; None: the stack's.
    webhook_secret: str | None = None
    # Organization mode: only decisions about images in these accounts / regions (None: any).
    accounts: list[Annotated[str, Field(pattern=r"^\d{12}$")]] | None = Field(None, min_length=1)
    regions: list[Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]] | None = Field(None, min_length=1)

    def matches(self, repository: str, account: str | None = None, region: str | None = None) -> bool:
        """A route limited to some accounts or regions never matches a decision that does not name its own."""
        return (
            any(fnmatch.fnmatchcase(repository, pattern) for pattern in self.repositories)
            and (self.accounts is None or account in self.accounts)
            and (self.regions is None or region in self.regions)
        )


class FindingsLag(BaseModel):
    """A scan result whose counts reach a threshold before its findings are listed (AWS documents the lag):
    the image is never passed. It is checked again, without sleeping, until the window closes; then the counts
    decide: `block` (fail closed) or `alert` (announce `findings_missing`, leave the image as it is)."""

    model_config = STRICT

    window_seconds: int = Field(600, ge=10, le=86400)
    first_recheck_seconds: int = Field(60, ge=1, le=900)  # doubles on every re-check
    on_timeout: Literal["block", "alert"] = "block"


class Notifications(BaseModel):
    model_config = STRICT

    # Follow-ups for one image within this window are aggregated into one message (SQS delay: at most 900 s).
    follow_up_window_seconds: int = Field(300, ge=30, le=900)
    routes: list[SlackRoute] = Field(default_factory=lambda: [SlackRoute(name="default")])


class Policy(BaseModel):
    model_config = STRICT

    version: Literal[1] = 1
    quarantine_tag_prefix: str = Field("quarantined-", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$")
    tag_prefix: str = Field("ecr-warden-", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$")
    unscanned: Literal["allow", "block"] = "allow"
    # an image with no scan result this long after its push is checked and announced as unscanned
    unscanned_after_seconds: int = Field(1800, ge=10, le=86400)
    auto_release_on_close: bool = False
    findings_lag: FindingsLag = Field(default_factory=FindingsLag)
    rules: list[Rule] = Field(min_length=1)
    exemptions: list[Exemption] = Field(default_factory=list)
    # the latest expiry an exemption added through the admin function may have, in days from its approval
    max_exemption_days: int = Field(90, ge=1, le=3650)
    notifications: Notifications = Field(default_factory=Notifications)
    # Desired repository settings per repository pattern (the settings guard; docs/settings.md)
    repository_settings: RepositorySettings = Field(default_factory=RepositorySettings)

    @model_validator(mode="after")
    def _distinct_prefixes(self) -> Policy:
        if self.quarantine_tag_prefix.startswith(self.tag_prefix) or self.tag_prefix.startswith(
            self.quarantine_tag_prefix
        ):
            raise ValueError("quarantine_tag_prefix and tag_prefix must not be prefixes of each other")
        names = [rule.name for rule in self.rules]
        if len(names) != len(set(names)):
            raise ValueError("rule names must be unique")
        return self

    def for_scope(self, account: str, region: str) -> Policy:
        """The policy as it applies to one registry: rules limited to other accounts or regions left out (the first
        matching rule of the rest wins, as everywhere). Unchanged when no rule is limited."""
        if all(rule.accounts is None and rule.regions is None for rule in self.rules):
            return self
        return self.model_copy(update={"rules": [rule for rule in self.rules if rule.applies_in(account, region)]})

    def rule_for(self, repository: str) -> Rule | None:
        """The first rule whose repository patterns match; None means the repository is not governed."""
        return next((rule for rule in self.rules if rule.matches(repository)), None)

    def quarantine_tag(self, digest: str) -> str:
        return f"{self.quarantine_tag_prefix}{short_digest(digest)}"

    def fallback_quarantine_tag(self, digest: str) -> str:
        return self.fallback_own_tag(self.quarantine_tag(digest))

    def fallback_own_tag(self, usual: str) -> str:
        """An own tag nobody can take first: the usual one plus a random suffix, used when the usual one is
        already on another image (anyone who can push may put `quarantined-<12 hex>` or the marker on any image).
        It cannot be recognised by name, only from the record that stores it."""
        return f"{usual}-{secrets.token_hex(8)}"

    def may_be_fallback_quarantine_tag(self, tag: str, digest: str) -> bool:
        """Shaped like a fallback own tag of this digest (quarantine tag or marker): check the record to know."""
        return tag.startswith((self.quarantine_tag(digest) + "-", self.marker_tag(digest) + "-"))

    def marker_tag(self, digest: str) -> str:
        return f"{self.tag_prefix}flagged-{short_digest(digest)}"

    def is_own_tag(self, tag: str, digest: str) -> bool:
        """Tags ecr-warden itself puts on this digest (its own pushes must not re-trigger work)."""
        return tag in (self.quarantine_tag(digest), self.marker_tag(digest))


def short_digest(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]
