"""The decision event ecr-warden puts on its bus (source `ecr-warden`). Versioned: consumers check the major.

detail-type `Image Decision`; see docs/decision-event.md. Minor versions only add optional fields.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ecr_warden.contracts.envelope import EventBridgeModel
from ecr_warden.domain.findings import Finding

DECISION_SOURCE = "ecr-warden"
DECISION_DETAIL_TYPE = "Image Decision"
SCHEMA_VERSION = "1.2"  # 1.1 added release_incomplete, tag_reused, findings_missing, unscanned and their fields;
# 1.2 added repository-settings decisions: subject "repository" (no digest), the settings_* actions, the verdicts
# COMPLIANT/NONCOMPLIANT, settings_changes and creation_path. Image decisions are unchanged.

# What the decision says where the image is. The notifier builds console links and commands from these, so a
# forged decision must not point them anywhere else.
_LOCATIONS = {
    "region": re.compile(r"[a-z]{2}(-[a-z]+)+-\d"),
    "account": re.compile(r"\d{12}"),
    # ECR's repository name pattern, at most 256 characters
    "repository": re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"),
    # an OCI digest: algorithm:encoded
    "digest": re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"),
}


class Action(StrEnum):
    NOOP = "noop"  # nothing to do: the outcome of most duplicate, replayed or irrelevant events; never announced
    MAPPED = "mapped"  # an image index was pushed: its platform images are remembered; never announced
    RELEASE_CONFLICTS = "release_conflicts"  # history only: tags a release could not restore
    QUARANTINED = "quarantined"
    ARCHIVED = "archived"
    TAGGED = "tagged"
    PASSED = "passed"
    UPDATED = "updated"  # still blocked/tagged, the findings behind it changed
    RETAG_BLOCKED = "retag_blocked"  # a blocked digest was pushed again under a new tag; the tag was removed
    NOW_COMPLIANT = "now_compliant"  # a blocked image no longer breaks the policy; release is left to a human
    RELEASED = "released"
    RELEASE_INCOMPLETE = "release_incomplete"  # released, but some recorded tags now point at other images
    TAG_REUSED = "tag_reused"  # a recorded tag of a blocked image was pushed onto another image
    FINDINGS_LAGGING = "findings_lagging"  # counts reach a threshold, findings not listed yet: re-checking
    FINDINGS_MISSING = "findings_missing"  # still not listed when the window closed (policy: alert, not block)
    UNSCANNED = "unscanned"  # no scan result in time after the push; the reason says why
    KEPT_RELEASED = "kept_released"  # released by an admin; a late scan with the same findings does not re-block
    SCAN_FAILED = "scan_failed"
    SKIPPED = "skipped"  # the image or repository no longer exists
    WOULD_QUARANTINE = "would_quarantine"
    WOULD_ARCHIVE = "would_archive"
    WOULD_TAG = "would_tag"
    WOULD_REMOVE_TAG = "would_remove_tag"
    # repository settings (subject "repository")
    SETTINGS_ENFORCED = "settings_enforced"  # settings were changed to the policy's (settings_changes)
    SETTINGS_REPORTED = "settings_reported"  # a gap ecr-warden leaves as it is (encryption, infrastructure as code)
    WOULD_ENFORCE_SETTINGS = "would_enforce_settings"  # audit mode: the changes it would make


class SettingChange(BaseModel):
    """One repository setting changed (or, in audit mode, to change): before -> after, as a person reads it."""

    # defer_build: image decisions never hold one; DecisionDetail builds it into its own validator
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    setting: str
    before: str | None = None
    after: str | None = None
    applied: bool = True


class DecisionDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: str
    decision_id: str
    time: datetime
    account: str
    region: str
    environment: str
    mode: Literal["enforce", "audit"]
    repository: str
    digest: str | None = None  # None only for subject "repository"
    subject: Literal["image", "repository"] = "image"
    tags: list[str] = Field(default_factory=list, description="the image's deployable tags before the action")
    verdict: Literal["PASS", "TAG", "BLOCK", "COMPLIANT", "NONCOMPLIANT"]
    action: Action
    status: str
    previous_status: str | None = None
    rule: str | None = None
    reasons: list[str] = Field(default_factory=list)
    severity_counts: dict[str, int] = Field(default_factory=dict)
    top_findings: list[Finding] = Field(default_factory=list)
    findings_total: int = 0
    exempted: list[str] = Field(default_factory=list)
    quarantine_tag: str | None = None
    marker_tag: str | None = None
    acted_on: str | None = Field(None, description="digest changed when it differs from digest (multi-arch index)")
    not_restored: dict[str, str | None] = Field(
        default_factory=dict, description="release_incomplete: each recorded tag left out -> the digest it is on now"
    )
    tag_now_on: str | None = Field(None, description="tag_reused: the digest the reused tag points at now")
    settings_changes: list[SettingChange] = Field(default_factory=list)
    creation_path: str | None = Field(None, description="CreateRepository: person_or_pipeline, pull_through_cache, …")
    trigger: str
    trigger_event_id: str | None = None
    fingerprint: str | None = None

    @field_validator("schema_version")
    @classmethod
    def _known_major(cls, value: str) -> str:
        if value.split(".", 1)[0] != SCHEMA_VERSION.split(".", 1)[0]:
            raise ValueError(f"unsupported decision schema version {value!r} (this code reads {SCHEMA_VERSION})")
        return value

    @field_validator("region", "account", "repository", "digest")
    @classmethod
    def _real_shaped(cls, value: str | None, info: ValidationInfo) -> str | None:
        name = str(info.field_name)
        if value is None:
            return value
        if len(value) > 256 or not _LOCATIONS[name].fullmatch(value):
            raise ValueError(f"not a valid {name}")
        return value

    @model_validator(mode="after")
    def _image_decisions_name_the_image(self) -> DecisionDetail:
        if self.subject == "image" and self.digest is None:
            raise ValueError("an image decision needs its digest")
        return self


class DecisionEvent(EventBridgeModel):
    """The EventBridge envelope of a decision, as consumers of the bus (the notifier) receive it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    source: Literal["ecr-warden"]
    detail_type: Literal["Image Decision"] = Field(alias="detail-type")
    detail: DecisionDetail
