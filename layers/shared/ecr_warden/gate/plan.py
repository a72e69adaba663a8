"""What a transition asks for: the record to write ahead, then the ECR changes, then the announcement."""

from __future__ import annotations

from dataclasses import dataclass

from ecr_warden.contracts.decision import Action
from ecr_warden.domain.images import Manifest
from ecr_warden.domain.records import ImageRecord, ImageStatus


@dataclass(frozen=True)
class AddTag:
    """Tag the digest by putting its exact manifest again (never moves a tag that is on another image)."""

    tag: str
    manifest: Manifest


@dataclass(frozen=True)
class RemoveTags:
    """Remove tag references by name; the image stays while another tag holds it."""

    tags: tuple[str, ...]


@dataclass(frozen=True)
class Archive:
    """Move the image to the ARCHIVE storage class: it can no longer be pulled by tag or digest."""


Effect = AddTag | RemoveTags | Archive


@dataclass(frozen=True)
class Plan:
    """The effects of one transition, in the order that keeps every crash recoverable: the record is written
    first (write-ahead), the ECR effects follow, the announcement comes last."""

    record: ImageRecord
    expected_version: int
    action: Action
    previous: ImageStatus | None
    reason: str  # what the outcome says (the history entry in `record` may say more)
    effects: tuple[Effect, ...] = ()
    announce: bool = True
    tags: tuple[str, ...] | None = None  # the tags the announcement names; None: the record's original tags
    metric: str | None = None
    claims: tuple[str, ...] = ()  # tags the image gives up: a later push of one onto another image is announced
    not_restored: dict[str, str | None] | None = None  # release_incomplete: tag -> the digest it is on now
    tag_now_on: str | None = None  # tag_reused: the digest the reused tag points at now
    # re-read the image's tags after the write-ahead, right before removing: a tag pushed since the plan was made
    # (its push event found no record yet) is removed too, and one that left this digest is left where it is
    reread_tags: bool = False
    decision_id: str | None = None  # the announcement's id, kept across retries (consumers deduplicate on it)
