"""The local stack's ECR replication: configurations kept as sent, answered raw, and which copies follow."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from ecr_warden.domain.images import Scope
from ecr_warden_tools.local.concurrency import ConcurrencyLog
from ecr_warden_tools.local.replication import (
    ReplicationConfigurations,
    ReplicationError,
    Target,
    is_replication_role,
    replication_role_arn,
    validate,
)
from ecr_warden_tools.local.server import LocalAwsApp

SOURCE = Scope("111111111111", "us-west-2")
REPLICA = Scope("222222222222", "us-east-1")
DR = Scope("111111111111", "eu-west-1")


def rule(prefix: str | None, *destinations: Scope, deletes: bool | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"destinations": [{"registryId": d.account, "region": d.region} for d in destinations]}
    if prefix is not None:
        found["repositoryFilters"] = [{"filter": prefix, "filterType": "PREFIX_MATCH"}]
    if deletes is not None:
        found["deleteReplication"] = {"enabled": deletes}
    return found


def test_pushes_follow_matching_rules_and_deletions_only_where_enabled() -> None:
    configurations = ReplicationConfigurations()
    configurations.put(
        SOURCE,
        {"rules": [rule("ses-base/", REPLICA), rule("ses-base/api", REPLICA, deletes=True), rule(None, DR)]},
    )
    assert configurations.targets(SOURCE, "ses-base/api-server") == [Target(REPLICA, True), Target(DR, False)]
    assert configurations.targets(SOURCE, "ses-base/worker") == [Target(REPLICA, False), Target(DR, False)]
    assert configurations.targets(SOURCE, "other/app") == [Target(DR, False)]
    assert configurations.targets(REPLICA, "ses-base/api-server") == []
    assert configurations.get(REPLICA) == {"rules": []}


@pytest.mark.parametrize(
    ("configuration", "code", "message"),
    [
        ({"rules": [rule("a/", SOURCE)]}, "InvalidParameterException", "cannot be the same as the source"),
        ({"rules": [rule("a/", REPLICA)] * 11}, "ValidationException", "at most 10 rules"),
        ({"rules": [rule("a/")]}, "InvalidParameterException", "1..25 destinations"),
        (
            {"rules": [{**rule(None, REPLICA), "repositoryFilters": [{"filter": "a", "filterType": "WILDCARD"}]}]},
            "InvalidParameterException",
            "PREFIX_MATCH",
        ),
        ({}, "InvalidParameterException", "rules is required"),
    ],
)
def test_configurations_ecr_refuses(configuration: dict[str, Any], code: str, message: str) -> None:
    with pytest.raises(ReplicationError, match=message) as raised:
        validate(configuration, SOURCE)
    assert raised.value.code == code


def test_the_replication_role_is_recognised_by_its_name() -> None:
    arn = replication_role_arn("222222222222")
    assert arn.endswith(":role/aws-service-role/replication.ecr.amazonaws.com/AWSServiceRoleForECRReplication")
    assert is_replication_role(arn)
    assert is_replication_role("arn:aws:iam::222222222222:role/AWSServiceRoleForECRReplication")
    assert not is_replication_role("arn:aws:iam::222222222222:role/ecr-warden-member")
    assert not is_replication_role(None)


# -- over the endpoint: Put keeps `deleteReplication`, Describe answers it -------------------------------------


class _Stack:
    central = Scope("123456789012", "us-east-1")

    def __init__(self) -> None:
        self.replication = ReplicationConfigurations()
        self.calls: list[tuple[str, Scope]] = []

    def echo(self, line: str) -> None:
        return None

    def wake(self) -> None:
        return None

    def emit_ecr_call(self, call: Any, scope: Scope, access_key: str | None) -> None:
        self.calls.append((call.operation, scope))


def _moto_describe_registry(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = json.dumps({"registryId": "123456789012", "replicationConfiguration": {"rules": []}}).encode()
    start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))])
    return [body]


def _request(app: LocalAwsApp, operation: str, body: dict[str, Any], region: str) -> tuple[str, dict[str, str], Any]:
    payload = json.dumps(body).encode()
    environ = {
        "PATH_INFO": "/",
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": str(len(payload)),
        "CONTENT_TYPE": "application/x-amz-json-1.1",
        "HTTP_X_AMZ_TARGET": f"AmazonEC2ContainerRegistry_V20150921.{operation}",
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=testing/20261128/{region}/ecr/aws4_request, Signature=x",
        "wsgi.input": io.BytesIO(payload),
    }
    answered: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answered["status"], answered["headers"] = status, dict(headers)
        return lambda _data: None

    raw = b"".join(app(environ, start_response))
    return answered["status"], answered["headers"], json.loads(raw)


def test_describe_registry_answers_the_configuration_as_it_was_put() -> None:
    stack = _Stack()
    app = LocalAwsApp(_moto_describe_registry, stack)  # type: ignore[arg-type]
    configuration = {"rules": [rule("ses-base/", REPLICA, deletes=True)]}

    status, _headers, answer = _request(
        app, "PutReplicationConfiguration", {"replicationConfiguration": configuration}, "us-west-2"
    )
    assert status == "200 OK"
    assert answer == {"replicationConfiguration": configuration}
    assert stack.calls == [("PutReplicationConfiguration", Scope("123456789012", "us-west-2"))]

    status, headers, answer = _request(app, "DescribeRegistry", {}, "us-west-2")
    assert answer["replicationConfiguration"] == configuration  # deleteReplication included
    assert int(headers["Content-Length"]) == len(json.dumps(answer))
    assert _request(app, "DescribeRegistry", {}, "us-east-1")[2]["replicationConfiguration"] == {"rules": []}


def test_a_refused_configuration_is_the_ecr_error_and_keeps_nothing() -> None:
    stack = _Stack()
    app = LocalAwsApp(_moto_describe_registry, stack)  # type: ignore[arg-type]
    bad = {"rules": [rule("ses-base/", Scope("123456789012", "us-west-2"))]}
    status, _headers, answer = _request(
        app, "PutReplicationConfiguration", {"replicationConfiguration": bad}, "us-west-2"
    )
    assert status.startswith("400")
    assert answer["__type"].endswith("InvalidParameterException")
    assert stack.replication.get(Scope("123456789012", "us-west-2")) == {"rules": []}


# -- SQS event sources: what ran at once -----------------------------------------------------------------------


def test_concurrency_peaks_count_invocations_per_group_and_per_account() -> None:
    log = ConcurrencyLog()
    first = log.start(["111#us-east-1", "111#us-east-1"])
    second = log.start(["111#us-west-2", "222#us-east-1"])
    log.end(first, ["111#us-east-1", "111#us-east-1"])
    third = log.start(["111#us-east-1"])
    log.end(second, ["111#us-west-2", "222#us-east-1"])
    log.end(third, ["111#us-east-1"])
    assert log.summary() == {
        "peak": 2,
        "peak_per_group": {"111#us-east-1": 1, "111#us-west-2": 1, "222#us-east-1": 1},
        "peak_per_account": {"111": 2, "222": 1},
    }
    assert len(log.runs) == 3


# -- the stack plays a replicated operation in the destination ------------------------------------------------


class _Ecr:
    """A destination registry's ECR client: records the calls the replication makes."""

    class exceptions:
        class RepositoryNotFoundException(Exception):
            pass

    def __init__(self, repositories: set[str]) -> None:
        self.repositories = repositories
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def describe_repositories(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("DescribeRepositories", kwargs))
        if kwargs["repositoryNames"][0] not in self.repositories:
            raise self.exceptions.RepositoryNotFoundException
        return {}

    def create_repository(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("CreateRepository", kwargs))
        return {}

    def put_image(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("PutImage", kwargs))
        return {"image": {"imageId": {"imageDigest": "sha256:abc", "imageTag": kwargs.get("imageTag")}}}

    def batch_delete_image(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("BatchDeleteImage", kwargs))
        return {"imageIds": kwargs["imageIds"], "failures": []}


def _replicating_stack(ecr: _Ecr, roles: list[tuple[Scope, str]]) -> Any:
    from pathlib import Path

    from ecr_warden_tools.local.stack import LocalStack

    class _Clients:
        def client(self, service: str, scope: Scope, role_name: str) -> Any:
            roles.append((scope, role_name))
            return ecr

    stack = LocalStack(Path("template.yaml"), echo=lambda _line: None)
    stack.clients = _Clients()  # type: ignore[assignment]
    return stack


def test_a_push_is_copied_with_the_replication_role_creating_the_repository_and_announced() -> None:
    ecr, roles = _Ecr(set()), []
    stack = _replicating_stack(ecr, roles)
    request = {"repositoryName": "ses-base/api", "imageManifest": "{}", "imageManifestMediaType": "m", "imageTag": "v1"}

    stack._replicate_to(SOURCE, Target(REPLICA, False), "PutImage", request, {})

    assert [name for name, _ in ecr.calls] == ["DescribeRepositories", "CreateRepository", "PutImage"]
    assert ecr.calls[-1][1] == {
        "repositoryName": "ses-base/api",
        "imageManifest": "{}",
        "imageManifestMediaType": "m",
        "imageTag": "v1",
    }
    assert roles == [(REPLICA, "aws-service-role/replication.ecr.amazonaws.com/AWSServiceRoleForECRReplication")]
    event = stack._outbox.get_nowait()
    assert (event["detail-type"], event["account"], event["region"]) == (
        "ECR Replication Action",
        REPLICA.account,
        REPLICA.region,
    )
    assert event["detail"] == {
        "result": "SUCCESS",
        "repository-name": "ses-base/api",
        "image-digest": "sha256:abc",
        "source-account": SOURCE.account,
        "action-type": "REPLICATE",
        "source-region": SOURCE.region,
        "image-tag": "v1",
    }


def test_deletions_are_copied_only_where_delete_replication_is_enabled() -> None:
    ecr, roles = _Ecr({"ses-base/api"}), []
    stack = _replicating_stack(ecr, roles)
    request = {"repositoryName": "ses-base/api", "imageIds": [{"imageTag": "v1"}, {"imageDigest": "sha256:abc"}]}

    stack._replicate_to(SOURCE, Target(REPLICA, False), "BatchDeleteImage", request, {})
    assert ecr.calls == []

    stack._replicate_to(SOURCE, Target(REPLICA, True), "BatchDeleteImage", request, {})
    assert ecr.calls == [("BatchDeleteImage", request)]
