"""An AWS Organization on the one local endpoint: the central account (moto's default) and member accounts,
reached with credentials assumed into them (moto keeps state per the credentials' account)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from ecr_warden.domain.images import Scope

# The role Organizations creates in the accounts it creates: how the local tooling gets into a member.
ACCESS_ROLE_NAME = "OrganizationAccountAccessRole"
MEMBER_ROLE_NAME = "ecr-warden-member"


@dataclass(frozen=True)
class Organization:
    """The emulated organization: its id, the central scope, and the member accounts; every account has
    registries in every one of `regions` (the central region first)."""

    id: str
    central: Scope
    members: tuple[str, ...]
    regions: tuple[str, ...]

    @property
    def accounts(self) -> tuple[str, ...]:
        return (self.central.account, *self.members)

    def scopes(self) -> list[Scope]:
        return [Scope(account, region) for account in self.accounts for region in self.regions]


@dataclass
class ScopedClients:
    """Clients of the local endpoint in any account and region: the central account with its own (fake)
    credentials, others (and any account when `role_name` is another role) with credentials assumed into them
    through `role_name`."""

    endpoint_url: str
    central_account: str
    _credentials: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def session(self, scope: Scope, role_name: str = ACCESS_ROLE_NAME) -> boto3.Session:
        if scope.account == self.central_account and role_name == ACCESS_ROLE_NAME:
            return boto3.Session(
                region_name=scope.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
            )
        credentials = self._assumed(scope.account, role_name)
        return boto3.Session(
            region_name=scope.region,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

    def client(self, service: str, scope: Scope, role_name: str = ACCESS_ROLE_NAME) -> Any:
        return self.session(scope, role_name).client(  # type: ignore[call-overload]
            service, endpoint_url=self.endpoint_url, config=Config(retries={"mode": "standard"})
        )

    def _assumed(self, account: str, role_name: str) -> dict[str, str]:
        with self._lock:
            if (account, role_name) not in self._credentials:
                sts = self.client("sts", Scope(self.central_account, "us-east-1"))
                role_arn = f"arn:aws:iam::{account}:role/{role_name}"
                answer = sts.assume_role(RoleArn=role_arn, RoleSessionName="ecr-warden-local")
                self._credentials[(account, role_name)] = answer["Credentials"]
            return self._credentials[(account, role_name)]


def create_organization(organizations: Any, members: int) -> tuple[str, list[str]]:
    """Create the organization in the caller's account and `members` accounts in it: (org id, member ids)."""
    org_id = str(organizations.create_organization(FeatureSet="ALL")["Organization"]["Id"])
    member_ids = []
    for number in range(1, members + 1):
        status = organizations.create_account(
            AccountName=f"ecr-warden-local-member-{number}", Email=f"member-{number}@example.com"
        )["CreateAccountStatus"]
        member_ids.append(str(status["AccountId"]))
    return org_id, member_ids


def create_member_role(iam: Any, trusted_role_arns: list[str], org_id: str, central_account: str) -> None:
    """member.yaml's `ecr-warden-member`: trusted by the central functions' roles (moto does not enforce IAM;
    the trust is written as member.yaml writes it so the local account reads like a deployed one)."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": trusted_role_arns or [f"arn:aws:iam::{central_account}:root"]},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id, "aws:PrincipalAccount": central_account}},
            }
        ],
    }
    iam.create_role(RoleName=MEMBER_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))


def describe(organization: Organization, endpoint_url: str, say: Callable[[str], None]) -> None:
    """What `ecr-warden local --accounts N --regions N` prints at start."""
    central = organization.central
    say(f"organization {organization.id}: central account {central.account} in {central.region}")
    say(f"  regions: {', '.join(organization.regions)}")
    for member in organization.members:
        say(f"  member account {member} (role {MEMBER_ROLE_NAME}) in {', '.join(organization.regions)}")
    if organization.members:
        example = organization.members[0]
        say(
            "  push into a member: ecr-warden push --repository REPO --tag TAG "
            f"--account {example} --region {organization.regions[-1]} --endpoint-url {endpoint_url}"
        )
