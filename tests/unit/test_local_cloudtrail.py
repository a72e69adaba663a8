"""The local stack's `AWS API Call via CloudTrail` events have the shape CloudTrail gives ECR calls."""

from __future__ import annotations

import json

from ecr_warden.domain.images import Scope
from ecr_warden_tools.local.server import _ecr_call, caller_identity, cloudtrail_event
from tests.conftest import load_event

SCOPE = Scope("123456789012", "us-east-1")
ARN = "arn:aws:ecr:us-east-1:123456789012:repository/ses-base/api-server"


def _event(operation: str, request: dict[str, object], response: dict[str, object] | None) -> dict[str, object]:
    identity = caller_identity("aws-cli/2", lambda _name: None, SCOPE.account)
    return cloudtrail_event(operation, request, response, identity, "aws-cli/2", SCOPE)


def test_a_repository_call_names_the_repository_and_writes_times_as_cloudtrail_does() -> None:
    response = {"repository": {"repositoryArn": ARN, "createdAt": 1749549302.0, "imageTagMutability": "IMMUTABLE"}}
    event = _event("CreateRepository", {"repositoryName": "ses-base/api-server"}, response)
    detail = event["detail"]
    assert isinstance(detail, dict)
    assert detail["resources"] == [{"accountId": "123456789012", "ARN": ARN}]
    assert detail["responseElements"]["repository"]["createdAt"] == "Jun 10, 2025, 9:55:02 AM"
    assert detail["userIdentity"]["accessKeyId"].startswith("AKIA")


def test_the_shape_matches_the_sample_record_keys() -> None:
    sample = load_event("cloudtrail-put-image-tag-mutability.json")["detail"]
    request = {"repositoryName": "ses-base/api-server", "imageTagMutability": "MUTABLE"}
    response = {"registryId": "123456789012", **request}
    detail = _event("PutImageTagMutability", request, response)["detail"]
    assert isinstance(detail, dict)
    optional = {"sessionCredentialFromConsole", "additionalEventData"}
    assert set(sample) - optional <= set(detail)
    assert detail["requestParameters"] == sample["requestParameters"]
    assert detail["responseElements"] == sample["responseElements"]


def test_a_registry_call_has_no_resources() -> None:
    detail = _event("PutRegistryScanningConfiguration", {"scanType": "BASIC", "rules": []}, None)["detail"]
    assert isinstance(detail, dict)
    assert "resources" not in detail


def test_a_failed_call_is_recorded_with_its_error_and_no_response() -> None:
    body = json.dumps({"repositoryName": "r"}).encode()
    answer = json.dumps({"__type": "RepositoryPolicyNotFoundException", "message": "Repository policy does not exist"})
    call = _ecr_call("DeleteRepositoryPolicy", body, "400 Bad Request", answer.encode(), "aws-cli/2")
    assert call.error_code == "RepositoryPolicyNotFoundException"
    assert call.error_message == "Repository policy does not exist"
    assert call.response is None
