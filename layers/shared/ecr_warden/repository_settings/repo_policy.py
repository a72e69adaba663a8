"""Repository policies: the baseline statements ecr-warden keeps in every managed repository, merged by Sid with
the team's own statements. Pure."""

from __future__ import annotations

import json
from typing import Any

DENY_OUTSIDE_ORG = "EcrWardenDenyOutsideOrganization"
DENY_ANONYMOUS = "EcrWardenDenyPublicAccess"
# AWS services (ECR replication, Lambda pulling an image, ...) act with service principals that have no organization:
# the baseline never locks them out.
_NOT_A_SERVICE = {"BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}


def baseline(organization_id: str | None) -> list[dict[str, Any]]:
    """Deny every principal outside the organization (when one is configured), and any caller that is not an
    authenticated AWS principal (no account: public access)."""
    statements: list[dict[str, Any]] = []
    if organization_id:
        statements.append(
            {
                "Sid": DENY_OUTSIDE_ORG,
                "Effect": "Deny",
                "Principal": "*",
                "Action": "ecr:*",
                "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": organization_id}} | _NOT_A_SERVICE,
            }
        )
    statements.append(
        {
            "Sid": DENY_ANONYMOUS,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "ecr:*",
            "Condition": {"Null": {"aws:PrincipalAccount": "true"}} | _NOT_A_SERVICE,
        }
    )
    return statements


def parse(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError("a repository policy is a JSON object")
    return document


def _statements(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    statements = (document or {}).get("Statement") or []
    return [statements] if isinstance(statements, dict) else list(statements)


def merge(actual: dict[str, Any] | None, wanted: list[dict[str, Any]]) -> dict[str, Any]:
    """The team's statements with every baseline statement in place: a statement with a baseline Sid is replaced
    by the baseline's, the others are kept in their order; missing baseline statements are appended."""
    by_sid = {statement["Sid"]: statement for statement in wanted}
    merged = [by_sid.get(s.get("Sid"), s) for s in _statements(actual)]
    present = {s.get("Sid") for s in merged}
    merged += [s for s in wanted if s["Sid"] not in present]
    return {"Version": (actual or {}).get("Version", "2012-10-17"), "Statement": merged}


def _canonical(value: Any) -> Any:
    """IAM treats a one-element list and its element alike: compare them as the same."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        return items[0] if len(items) == 1 else sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


def has_baseline(actual: dict[str, Any] | None, wanted: list[dict[str, Any]]) -> bool:
    present = {s.get("Sid"): _canonical(s) for s in _statements(actual)}
    return all(present.get(s["Sid"]) == _canonical(s) for s in wanted)


def public_grants(document: dict[str, Any] | None) -> list[str]:
    """Sids (or positions) of the team's statements that allow everyone without a condition: reported."""
    found = []
    for n, s in enumerate(_statements(document)):
        principal = s.get("Principal")
        everyone = principal == "*" or (isinstance(principal, dict) and principal.get("AWS") in ("*", ["*"]))
        if s.get("Effect") == "Allow" and everyone and not s.get("Condition"):
            found.append(str(s.get("Sid") or f"#{n}"))
    return found
