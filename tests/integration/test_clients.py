"""Clients per (service, account, region): the home account uses the function's own credentials, another account
is reached through the member role, assumed once and reused."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from ecr_warden.adapters.aws import ClientFactory
from ecr_warden.domain.images import Scope

HOME, MEMBER = "123456789012", "210987654321"


@pytest.fixture
def member_role() -> Iterator[None]:
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "*"}]}
        iam.create_role(RoleName="ecr-warden-member", AssumeRolePolicyDocument=json.dumps(trust))
        yield


def test_home_account_and_no_scope_use_own_credentials() -> None:
    with mock_aws():
        factory = ClientFactory(role_name="ecr-warden-member", home_account=HOME)
        own = factory.client("ecr", Scope(HOME, "us-east-1"))
        assert own is factory.client("ecr", Scope(HOME, "us-east-1"))
        assert own.meta.region_name == "us-east-1"
        assert factory.client("ecr", Scope(HOME, "eu-west-1")).meta.region_name == "eu-west-1"
        assert factory.client("ecr") is not own  # no scope: the default region of the environment


@pytest.mark.usefixtures("member_role")
def test_another_account_is_reached_through_the_member_role() -> None:
    factory = ClientFactory(role_name="ecr-warden-member", home_account=HOME)
    member = factory.client("sts", Scope(MEMBER, "eu-west-1"))
    identity = member.get_caller_identity()
    assert identity["Account"] == MEMBER
    assert ":assumed-role/ecr-warden-member/ecr-warden-" in identity["Arn"]
    assert member.meta.region_name == "eu-west-1"
    assert factory.client("sts", Scope(MEMBER, "eu-west-1")) is member  # one client (and session) per scope


def test_without_a_member_role_every_account_uses_own_credentials() -> None:
    with mock_aws():
        factory = ClientFactory()
        assert factory.client("sts", Scope(MEMBER, "us-east-1")).get_caller_identity()["Account"] == HOME


@pytest.mark.usefixtures("member_role")
def test_member_accounts_share_one_copy_of_botocores_models_and_the_cache_is_bounded() -> None:
    """A warm central function meets many member accounts: each assumed session loading its own service models
    cost about 35 MiB per account (a 512 MB function ran out of memory after a dozen accounts)."""
    from ecr_warden.adapters import aws

    factory = ClientFactory(role_name="ecr-warden-member", home_account=HOME)
    first = factory.client("ecr", Scope("210987654321", "us-east-1"))
    second = factory.client("ecr", Scope("987654321098", "us-west-2"))
    assert first is not second
    assert first._loader is second._loader  # one loader, one copy of the models
    for n in range(aws.MAX_CLIENTS):
        factory.client("inspector2", Scope(f"{300000000000 + n}", "us-east-1"))
    assert len(factory._clients) == aws.MAX_CLIENTS
    assert factory.client("ecr", Scope("210987654321", "us-east-1")) is not first  # the oldest went first
