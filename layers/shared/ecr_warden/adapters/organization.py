"""The organization's accounts, for runs over every registry (organization mode only): Organizations ListAccounts,
which the management account and any delegated administrator (the security account usually is one, for
Inspector) may call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ecr_warden.adapters.aws import client

IAM_ACTIONS = frozenset({"organizations:ListAccounts"})


@dataclass
class OrganizationsDirectory:
    _client: Any = field(default=None)

    def accounts(self) -> list[str]:
        organizations = self._client or client("organizations")
        found: list[str] = []
        for page in organizations.get_paginator("list_accounts").paginate():
            # `State` replaces `Status` (retired September 2026); a suspended or closing account has no registry to
            # guard, and listing it every day would report it unreachable every day
            found.extend(str(a["Id"]) for a in page.get("Accounts", []) if _state(a) == "ACTIVE")
        return sorted(found)


def _state(account: dict[str, Any]) -> str:
    return str(account.get("State") or account.get("Status") or "ACTIVE")
