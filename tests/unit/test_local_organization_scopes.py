"""The local stack's scope of a request: the signer's account (moto's, by access key) and SigV4 region."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from ecr_warden.domain.images import Scope
from ecr_warden_tools.local.scopes import (
    REGIONS,
    account_argument,
    account_of,
    assumed_role_of,
    count_argument,
    credential_scope,
    regions,
    request_scope,
)

CENTRAL = Scope("123456789012", "us-east-1")
MEMBER = "210987654321"


def authorization(key: str, region: str, service: str = "ecr") -> str:
    return (
        f"AWS4-HMAC-SHA256 Credential={key}/20261128/{region}/{service}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    )


@pytest.fixture
def assumed() -> Iterator[dict[str, str]]:
    with mock_aws():
        sts = boto3.client(
            "sts",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        role = f"arn:aws:iam::{MEMBER}:role/ecr-warden-member"
        yield sts.assume_role(RoleArn=role, RoleSessionName="ecr-warden-gate")["Credentials"]


def test_the_credential_scope_gives_the_key_and_the_region() -> None:
    assert credential_scope(authorization("AKIAEXAMPLE", "ap-northeast-1")) == ("AKIAEXAMPLE", "ap-northeast-1")
    assert credential_scope("") is None
    assert credential_scope("Bearer token") is None


def test_assumed_credentials_are_in_the_role_account(assumed: dict[str, str]) -> None:
    key = assumed["AccessKeyId"]
    assert account_of(key) == MEMBER
    environ = {"HTTP_AUTHORIZATION": authorization(key, "us-west-2")}
    assert request_scope(environ, CENTRAL) == Scope(MEMBER, "us-west-2")
    assert assumed_role_of(key, MEMBER) == (f"arn:aws:iam::{MEMBER}:role/ecr-warden-member", "ecr-warden-gate")


def test_keys_moto_never_issued_are_the_default_account_and_unsigned_calls_the_default_scope() -> None:
    with mock_aws():
        environ = {"HTTP_AUTHORIZATION": authorization("testing", "eu-west-1")}
        assert request_scope(environ, CENTRAL) == Scope("123456789012", "eu-west-1")
        assert request_scope({}, CENTRAL) == CENTRAL
        assert assumed_role_of("testing", "123456789012") is None


def test_regions_start_with_the_central_one_then_follow_the_fixed_list() -> None:
    assert regions("us-east-1", 1) == ["us-east-1"]
    assert regions("us-east-1", 3) == ["us-east-1", "us-west-2", "ap-northeast-1"]
    assert regions("eu-west-1", 3) == ["eu-west-1", "us-east-1", "us-west-2"]
    assert len(regions("us-east-1", len(REGIONS))) == len(set(REGIONS))
    with pytest.raises(ValueError, match=r"regions must be 1\.\.10"):
        regions("us-east-1", 0)


def test_the_cli_numbers_and_account_ids_are_checked_in_one_line() -> None:
    accounts = count_argument("accounts", 20)
    assert accounts("20") == 20
    for text, message in (("0", "0 accounts: use 1..20"), ("x", "'x' is not a number of accounts")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            accounts(text)
    assert account_argument("111122223333") == "111122223333"
    with pytest.raises(argparse.ArgumentTypeError, match="12 digits"):
        account_argument("1234")


def test_ecr_calls_in_a_member_scope_emit_that_scopes_events_and_only_they_are_forwarded() -> None:
    from pathlib import Path

    from ecr_warden_tools.local.server import EcrCall
    from ecr_warden_tools.local.stack import LocalStack

    stack = LocalStack(Path("template.yaml"), echo=lambda _line: None)
    request = {"repositoryName": "ses-base/api", "imageTag": "v1"}
    response = {"image": {"repositoryName": "ses-base/api", "imageId": {"imageDigest": "sha256:abc", "imageTag": "v1"}}}
    member = Scope(MEMBER, "us-west-2")

    stack.emit_ecr_call(EcrCall("PutImage", request, response, "aws-cli/2"), member, None)

    events = [stack._outbox.get_nowait() for _ in range(stack._outbox.qsize())]
    assert [e["detail-type"] for e in events] == ["ECR Image Action", "AWS API Call via CloudTrail"]
    assert {(e["account"], e["region"]) for e in events} == {(MEMBER, "us-west-2")}
    assert events[1]["detail"]["recipientAccountId"] == MEMBER
    assert events[1]["detail"]["userIdentity"]["accountId"] == MEMBER
    assert not any(stack._is_central(e) for e in events)
    assert stack._is_central({"account": CENTRAL.account, "region": CENTRAL.region})
    assert not stack._is_central({"account": CENTRAL.account, "region": "us-west-2"})
