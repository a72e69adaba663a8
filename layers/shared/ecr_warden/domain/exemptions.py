"""CVE exemptions as ecr-warden's own store keeps them (ecr_warden.adapters.exemptions): what the gate reads at every
decision and the admin's `exempt` writes. Apart from the admin ports so that the gate doesn't load those."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ecr_warden.errors import WardenError
from ecr_warden.policy.model import Exemption

ANY_DIGEST = "*"


def iso(moment: datetime) -> str:
    """UTC, to the second: stored times compare as strings (the add's condition)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse(text: Any) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def exemption_key(repository: str, cve: str, digest: str | None) -> str:
    return f"{repository}#{cve}#{digest or ANY_DIGEST}"


@dataclass(frozen=True)
class StoredExemption:
    """One exemption in ecr-warden's store: scope (repository, CVE, one digest or any), expiry, why, who approved,
    who added it and, once revoked, who revoked it and why (a revoked exemption stays, for the record)."""

    repository: str
    cve: str
    digest: str | None
    expires: datetime
    reason: str
    approver: str
    added_by: str
    added_at: datetime
    request_id: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    revoke_request_id: str | None = None

    @property
    def sort_key(self) -> str:
        return exemption_key(self.repository, self.cve, self.digest)

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "active" if now < self.expires else "expired"

    def as_policy_exemption(self) -> Exemption:
        """The policy's own model, so the gate applies both kinds alike."""
        return Exemption(
            cve=self.cve,
            repositories=[self.repository],
            digest=self.digest,
            expires=self.expires,
            reason=self.reason,
            approver=self.approver,
        )

    def to_item(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "cve": self.cve,
            "image_digest": self.digest or ANY_DIGEST,
            "expires": iso(self.expires),
            "reason": self.reason,
            "approver": self.approver,
            "added_by": self.added_by,
            "added_at": iso(self.added_at),
            "request_id": self.request_id,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> StoredExemption:
        digest, revoked = item.get("image_digest"), item.get("revoked_at")
        return cls(
            repository=str(item["repository"]),
            cve=str(item["cve"]),
            digest=None if digest in (None, ANY_DIGEST) else str(digest),
            expires=_parse(item["expires"]),
            reason=str(item["reason"]),
            approver=str(item["approver"]),
            added_by=str(item.get("added_by", "")),
            added_at=_parse(item["added_at"]),
            request_id=str(item.get("request_id", "")),
            revoked_at=_parse(revoked) if revoked else None,
            revoked_by=item.get("revoked_by"),
            revoke_reason=item.get("revoke_reason"),
            revoke_request_id=item.get("revoke_request_id"),
        )

    def summary(self, now: datetime) -> dict[str, Any]:
        """For people and the CLI (JSON)."""
        found = {
            "repository": self.repository,
            "cve": self.cve,
            "digest": self.digest,
            "expires": iso(self.expires),
            "reason": self.reason,
            "approver": self.approver,
            "added_by": self.added_by,
            "added_at": iso(self.added_at),
            "state": self.state(now),
        }
        if self.revoked_at is not None:
            found.update(revoked_at=iso(self.revoked_at), revoked_by=self.revoked_by, revoke_reason=self.revoke_reason)
        return found


class ExemptionConflict(WardenError):
    """A write's condition failed: an active exemption has the key already (add), or it is not the one read or no
    longer active (revoke). `current`: the item as it is now."""

    def __init__(self, current: StoredExemption | None) -> None:
        self.current = current
        super().__init__("the exemption changed concurrently")
