"""Which account and region a request to the one local endpoint is in, as AWS would see it.

The account is the one the access key belongs to (moto keys its state the same way: assumed-role credentials
belong to the role's account); the region is the SigV4 credential scope's, which is also the region moto uses.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping
from typing import Any

from ecr_warden.domain.images import Scope

# The regions `--regions N` takes the first N of (after the central region, which always comes first).
REGIONS = (
    "us-east-1",
    "us-west-2",
    "ap-northeast-1",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-1",
    "eu-north-1",
    "ap-south-1",
    "ca-central-1",
    "sa-east-1",
)
MAX_ACCOUNTS = 20

_CREDENTIAL = re.compile(r"Credential=(?P<key>[^/,\s]+)/\d{8}/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)/")


def regions(central: str, count: int) -> list[str]:
    """The central region, then the fixed list without it, `count` in all."""
    if not 1 <= count <= len(REGIONS):
        raise ValueError(f"regions must be 1..{len(REGIONS)}, not {count}")
    return [central, *(r for r in REGIONS if r != central)][:count]


def credential_scope(authorization: str) -> tuple[str, str] | None:
    """(access key, region) of a SigV4 Authorization header; None for an unsigned request."""
    match = _CREDENTIAL.search(authorization)
    return (match.group("key"), match.group("region")) if match else None


def account_of(access_key: str) -> str:
    """The account moto keeps this access key's calls in (its default account for keys it never issued)."""
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key)


def request_scope(environ: Mapping[str, Any], default: Scope) -> Scope:
    """The scope of a WSGI request: the signer's account and region, else `default` (unsigned calls)."""
    found = credential_scope(str(environ.get("HTTP_AUTHORIZATION", "")))
    if found is None:
        return default
    access_key, region = found
    return Scope(account_of(access_key), region)


def assumed_role_of(access_key: str, account: str) -> tuple[str, str] | None:
    """(role ARN, session name) when the key was issued by moto's AssumeRole, else None."""
    from moto.sts.models import sts_backends

    for backend in list(sts_backends[account].values()):
        role = backend.get_assumed_role_from_access_key(access_key)
        if role is not None:
            return str(role.role_arn), str(role.session_name)
    return None


def count_argument(what: str, highest: int) -> Callable[[str], int]:
    """An argparse type: a whole number of `what` from 1 to `highest` (a one-line error otherwise)."""

    def count(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of {what}") from None
        if not 1 <= value <= highest:
            raise argparse.ArgumentTypeError(f"{value} {what}: use 1..{highest}")
        return value

    return count


def account_argument(text: str) -> str:
    """An argparse type: a 12-digit AWS account id."""
    if not re.fullmatch(r"\d{12}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an AWS account id (12 digits)")
    return text
