"""Whatever fails inside the local endpoint, an SDK client gets an AWS error it can parse: never an HTML page."""

from __future__ import annotations

import io
import json
from typing import Any

import botocore.session
import pytest
from botocore.parsers import create_parser

from ecr_warden.domain.images import Scope
from ecr_warden_tools.local.server import LocalAwsApp

ECR_SCOPE = "AWS4-HMAC-SHA256 Credential=testing/20261128/us-east-1/ecr/aws4_request, SignedHeaders=host"
SQS_SCOPE = "AWS4-HMAC-SHA256 Credential=testing/20261128/us-east-1/sqs/aws4_request, SignedHeaders=host"


class _Stack:
    central = Scope("123456789012", "us-east-1")  # where unsigned calls go

    def __init__(self) -> None:
        self.lines: list[str] = []

    def echo(self, line: str) -> None:
        self.lines.append(line)

    def wake(self) -> None:
        return None


def _call(moto_app: Any, environ: dict[str, Any]) -> tuple[str, dict[str, str], bytes, _Stack]:
    stack = _Stack()
    answered: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answered["status"], answered["headers"] = status, dict(headers)
        return lambda _data: None

    body = b"".join(LocalAwsApp(moto_app, stack)(environ, start_response))  # type: ignore[arg-type]
    return answered["status"], answered["headers"], body, stack


def _ecr_environ(operation: str) -> dict[str, Any]:
    payload = b'{"repositoryName": "r"}'
    return {
        "PATH_INFO": "/",
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": str(len(payload)),
        "CONTENT_TYPE": "application/x-amz-json-1.1",
        "HTTP_X_AMZ_TARGET": f"AmazonEC2ContainerRegistry_V20150921.{operation}",
        "HTTP_AUTHORIZATION": ECR_SCOPE,
        "wsgi.input": io.BytesIO(payload),
    }


def _raising(exc: Exception) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        raise exc

    return app


def test_an_unimplemented_operation_is_a_400_naming_it() -> None:
    status, headers, body, stack = _call(
        _raising(NotImplementedError("The get_account_setting action has not been implemented")),
        _ecr_environ("GetAccountSetting"),
    )
    assert status == "400 Bad Request"
    assert json.loads(body) == {
        "__type": "UnsupportedOperation",
        "message": "ecr:GetAccountSetting is not supported by the ecr-warden local stack",
    }
    assert headers["x-amzn-ErrorType"] == "UnsupportedOperation"
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert stack.lines == []


def test_an_unexpected_exception_is_a_500_internal_failure_logged_once() -> None:
    status, _headers, body, stack = _call(_raising(KeyError("boom")), _ecr_environ("PutImage"))
    assert status == "500 Internal Server Error"
    assert json.loads(body) == {"__type": "InternalFailure", "message": "ecr:PutImage failed: KeyError"}
    assert stack.lines == ["local AWS: ecr:PutImage failed inside the stack: KeyError: 'boom'"]


def test_a_failure_after_the_answer_started_still_answers_an_error() -> None:
    def answers_then_fails(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1")])
        raise RuntimeError("late")

    status, _headers, body, _stack = _call(answers_then_fails, _ecr_environ("TagResource"))
    assert status == "500 Internal Server Error"
    assert json.loads(body)["__type"] == "InternalFailure"


def test_a_query_protocol_call_gets_the_xml_error_its_parser_reads() -> None:
    form = b"Action=ListDeadLetterSourceQueues&Version=2012-11-05"
    environ = {
        "PATH_INFO": "/",
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": str(len(form)),
        "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8",
        "HTTP_AUTHORIZATION": SQS_SCOPE,
        "wsgi.input": io.BytesIO(form),
    }
    status, headers, body, _stack = _call(_raising(NotImplementedError()), environ)
    assert status == "400 Bad Request"
    assert headers["Content-Type"] == "text/xml"
    assert b"<Code>UnsupportedOperation</Code>" in body
    assert b"sqs:ListDeadLetterSourceQueues is not supported" in body


@pytest.mark.parametrize("operation", ["PutImage", "ListImages"])
def test_a_botocore_client_parses_the_error_with_its_code(operation: str) -> None:
    _status, headers, body, _stack = _call(_raising(NotImplementedError()), _ecr_environ(operation))
    model = botocore.session.get_session().get_service_model("ecr")
    parsed = create_parser("json").parse(
        {"status_code": 400, "headers": headers, "body": body}, model.operation_model(operation).output_shape
    )
    assert parsed["Error"]["Code"] == "UnsupportedOperation"


def test_an_html_error_page_from_moto_becomes_an_aws_error() -> None:
    def html_404(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("404 NOT FOUND", [("Content-Type", "text/html; charset=utf-8")])
        return [b"<!doctype html><title>404 Not Found</title>"]

    status, headers, body, _stack = _call(html_404, _ecr_environ("DescribeSomethingNew"))
    assert status == "400 Bad Request"
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert json.loads(body) == {
        "__type": "UnknownOperationException",
        "message": "ecr:DescribeSomethingNew: no such operation",
    }
