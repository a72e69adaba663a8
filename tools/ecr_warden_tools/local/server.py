"""The local AWS endpoint: moto's WSGI app wrapped with what moto does not do for ecr-warden.

- Lambda Invoke of a template function runs its real handler in-process (moto would need Docker).
- Successful ECR calls emit the events AWS would: `ECR Image Action` for PutImage/BatchDeleteImage and
  `AWS API Call via CloudTrail` for every mutating call, including the ones ecr-warden makes itself.
- Inspector2 ListFindings and ECR DescribeImageScanFindings are answered by the local scanner.
- Every call is in a scope: the account of its access key (moto's: assumed credentials are the role's account)
  and its SigV4 region; events, scans and replication configurations are that scope's.
- PutReplicationConfiguration/DescribeRegistry keep and answer the configuration as sent (`deleteReplication`).
- /_ecr_warden/* is the stack's own control API (scan an image, read state).
"""

from __future__ import annotations

import io
import json
import re
import sys
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ecr_warden.domain.images import Scope
from ecr_warden_tools.local.aws_errors import AwsError, operation_name
from ecr_warden_tools.local.replication import ReplicationError, validate
from ecr_warden_tools.local.runtime import HandlerError
from ecr_warden_tools.local.scopes import credential_scope, request_scope

if TYPE_CHECKING:
    from ecr_warden_tools.local.stack import LocalStack

StartResponse = Callable[..., Any]

ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921."
_READ_ONLY = ("Describe", "List", "Get", "BatchGet", "BatchCheck", "Validate")
_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
_FUNCTION_AGENT = re.compile(r"\bfn/(?P<name>[A-Za-z0-9_-]+)")


def _json_response(
    start_response: StartResponse,
    status: str,
    body: Any,
    content_type: str = "application/json",
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    payload = json.dumps(body, default=str).encode()
    start_response(
        status,
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(payload))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
            *(headers or []),
        ],
    )
    return [payload]


class LocalAwsApp:
    def __init__(self, moto_app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]], stack: LocalStack) -> None:
        self.moto_app = moto_app
        self.stack = stack

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Every answer is AWS-shaped: a failure anywhere below becomes an error the SDKs parse, never an HTML page."""
        started: list[bool] = []

        def tracking_start_response(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            started.append(True)
            return start_response(status, headers, exc_info)

        try:
            return self._route(environ, tracking_start_response)
        except NotImplementedError:
            exc_info = sys.exc_info()
            operation = operation_name(environ)
            error = AwsError(
                "400 Bad Request", "UnsupportedOperation", f"{operation} is not supported by the ecr-warden local stack"
            )
        except Exception as exc:
            exc_info = sys.exc_info()
            operation = operation_name(environ)
            self.stack.echo(f"local AWS: {operation} failed inside the stack: {type(exc).__name__}: {exc}")
            message = f"{operation} failed: {type(exc).__name__}"
            error = AwsError("500 Internal Server Error", "InternalFailure", message)
        return error.respond(environ, start_response, exc_info if started else None)

    def _route(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        body = self._read_body(environ)
        if not _is_delivery_poll(environ, body):
            self.stack.wake()  # the call may put a message where the stack delivers from
        if path.startswith("/_ecr_warden/"):
            return self._control(environ, path, body, start_response)
        if (match := _INVOKE_PATH.match(path)) and environ.get("REQUEST_METHOD") == "POST":
            spec = self.stack.provisioned.function(unquote(match.group("name")))
            if spec is not None:
                return self._invoke(spec.logical_id, environ, body, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        scope = request_scope(environ, self.stack.central)
        answered = self._scanner_answer(path, target, authorization, body, scope, start_response)
        if answered is not None:
            return answered
        if target == ECR_TARGET + "DescribeRegistry":
            return self._describe_registry(environ, scope, start_response)
        operation = target.removeprefix(ECR_TARGET)
        if target == ECR_TARGET + "PutReplicationConfiguration":
            status, response = self._put_replication(_loads(body), scope, environ, start_response)
        else:
            status, _headers, response = self._call_moto(environ, start_response)
        if target.startswith(ECR_TARGET) and not operation.startswith(_READ_ONLY) and status[:1] in "24":
            call = _ecr_call(operation, body, status, response, environ.get("HTTP_USER_AGENT", ""))
            found = credential_scope(authorization)
            self.stack.emit_ecr_call(call, scope, found[0] if found else None)
        return [response]

    def _scanner_answer(
        self,
        path: str,
        target: str,
        authorization: str,
        body: bytes,
        scope: Scope,
        start_response: StartResponse,
    ) -> list[bytes] | None:
        """What the local scanner answers for Inspector2 and ECR basic scanning, in the caller's scope."""
        if "/inspector2/aws4_request" in authorization and path == "/findings/list":
            return _json_response(start_response, "200 OK", self.stack.scanner.list_findings(_loads(body), scope))
        if "/inspector2/aws4_request" in authorization and path == "/coverage/list":
            return _json_response(start_response, "200 OK", self.stack.scanner.list_coverage(_loads(body), scope))
        if target == ECR_TARGET + "DescribeImageScanFindings":
            return self._basic_findings(_loads(body), scope, start_response)
        return None

    def _put_replication(
        self, request: dict[str, Any], scope: Scope, environ: dict[str, Any], start_response: StartResponse
    ) -> tuple[str, bytes]:
        """PutReplicationConfiguration, kept as sent (`deleteReplication` too, which botocore and moto drop)."""
        try:
            configuration = validate(request.get("replicationConfiguration"), scope)
        except ReplicationError as exc:
            captured: list[Any] = []
            body = b"".join(
                AwsError("400 Bad Request", exc.code, str(exc)).respond(
                    environ, lambda s, h, _exc=None: captured.extend((s, h))
                )
            )
            start_response(*captured)
            return str(captured[0]), body
        self.stack.replication.put(scope, configuration)
        answer = _json_response(
            start_response,
            "200 OK",
            {"replicationConfiguration": configuration},
            content_type="application/x-amz-json-1.1",
        )
        return "200 OK", b"".join(answer)

    def _describe_registry(self, environ: dict[str, Any], scope: Scope, start_response: StartResponse) -> list[bytes]:
        """DescribeRegistry answers the replication configuration as it was put (moto serializes through
        botocore's model, which lacks `deleteReplication`)."""
        captured: list[Any] = []
        status, headers, response = self._call_moto(environ, lambda s, h, _exc=None: captured.extend((s, h)))
        if status.startswith("2"):
            answer = _loads(response)
            answer["replicationConfiguration"] = self.stack.replication.get(scope)
            response = json.dumps(answer, default=str).encode()
            headers = [(k, str(len(response)) if k.lower() == "content-length" else v) for k, v in headers]
        start_response(status, headers)
        return [response]

    @staticmethod
    def _read_body(environ: dict[str, Any]) -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        return body

    def _call_moto(self, environ: dict[str, Any], start_response: StartResponse) -> tuple[str, list[Any], bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[Any], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        result = self.moto_app(environ, capture)
        try:
            response = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close:
                close()
        status, headers = captured["status"], captured["headers"]
        if status[:1] in "45" and "text/html" in dict(headers).get("Content-Type", ""):
            return self._html_error(environ, status, start_response)
        start_response(status, headers)
        return status, headers, response

    @staticmethod
    def _html_error(
        environ: dict[str, Any], status: str, start_response: StartResponse
    ) -> tuple[str, list[Any], bytes]:
        """moto answers some failures (an unknown path, a method it lacks) with werkzeug's HTML page: an SDK
        cannot parse that, so answer the AWS error for it."""
        operation = operation_name(environ)
        if status.startswith("404"):
            error = AwsError("400 Bad Request", "UnknownOperationException", f"{operation}: no such operation")
        elif status.startswith("4"):
            error = AwsError(status, "BadRequest", f"{operation}: {status}")
        else:
            error = AwsError(status, "InternalFailure", f"{operation} failed")
        captured: list[Any] = []
        body = error.respond(environ, lambda s, h, _exc=None: captured.extend((s, h)))
        start_response(*captured)
        return captured[0], captured[1], b"".join(body)

    def _invoke(
        self, logical_id: str, environ: dict[str, Any], body: bytes, start_response: StartResponse
    ) -> list[bytes]:
        invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        event = _loads(body) if body else {}
        if invocation_type == "DryRun":
            start_response("204 No Content", [("Content-Length", "0")])
            return [b""]
        if invocation_type == "Event":
            self.stack.invoke_async(logical_id, event)
            start_response("202 Accepted", [("Content-Length", "0")])
            return [b""]
        try:
            result = self.stack.runtimes[logical_id].invoke(event)
        except HandlerError as error:
            return _json_response(
                start_response,
                "200 OK",
                error.payload(),
                headers=[("X-Amz-Function-Error", "Unhandled"), ("X-Amz-Executed-Version", "$LATEST")],
            )
        return _json_response(start_response, "200 OK", result, headers=[("X-Amz-Executed-Version", "$LATEST")])

    def _basic_findings(
        self, request: dict[str, Any], scope: Scope, start_response: StartResponse
    ) -> list[bytes] | None:
        image_id = request.get("imageId") or {}
        digest = image_id.get("imageDigest")
        repository = request.get("repositoryName", "")
        if not digest and image_id.get("imageTag"):
            digest = self.stack.resolve_tag(repository, image_id["imageTag"], scope)
        scanned = self.stack.scanner.get(repository, digest, scope) if digest else None
        if scanned is None or scanned.scanner != "basic":
            return None
        return _json_response(
            start_response,
            "200 OK",
            self.stack.scanner.describe_image_scan_findings(scanned, request),
            content_type="application/x-amz-json-1.1",
        )

    def _control(self, environ: dict[str, Any], path: str, body: bytes, start_response: StartResponse) -> list[bytes]:
        try:
            if path == "/_ecr_warden/scan" and environ.get("REQUEST_METHOD") == "POST":
                return _json_response(start_response, "200 OK", self.stack.scan(**_loads(body)))
            if path == "/_ecr_warden/state":
                return _json_response(start_response, "200 OK", self.stack.state())
            if path == "/_ecr_warden/schedules":
                return _json_response(start_response, "200 OK", {"schedules": self.stack.list_schedules()})
            if path == "/_ecr_warden/schedules/fire" and environ.get("REQUEST_METHOD") == "POST":
                return _json_response(start_response, "200 OK", self.stack.fire_schedule(str(_loads(body)["name"])))
        except (TypeError, ValueError, LookupError) as exc:
            return _json_response(start_response, "400 Bad Request", {"error": str(exc)})
        return _json_response(start_response, "404 Not Found", {"error": f"no such control path {path}"})


_DELIVERY_POLLS = frozenset(
    {"ReceiveMessage", "DeleteMessage", "DeleteMessageBatch", "GetQueueAttributes", "GetQueueUrl", "ListQueues"}
)


def _is_delivery_poll(environ: dict[str, Any], body: bytes) -> bool:
    """The stack's own SQS polling (and reads like it) cannot add work: it must not wake the delivery loop."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("AmazonSQS."):
        return target.removeprefix("AmazonSQS.") in _DELIVERY_POLLS
    return any(f"Action={action}".encode() in body for action in _DELIVERY_POLLS)


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}


@dataclass(frozen=True)
class EcrCall:
    """A mutating ECR call as CloudTrail records it: what was asked, and what was answered or which error."""

    operation: str
    request: dict[str, Any]
    response: dict[str, Any] | None
    user_agent: str
    error_code: str | None = None
    error_message: str | None = None


def _ecr_call(operation: str, body: bytes, status: str, response: bytes, user_agent: str) -> EcrCall:
    if status.startswith("2"):
        return EcrCall(operation, _loads(body), _loads(response), user_agent)
    error = _loads(response)
    code = str(error.get("__type") or "UnknownError").rsplit("#", 1)[-1]
    return EcrCall(operation, _loads(body), None, user_agent, code, str(error.get("message") or error.get("Message")))


def _cloudtrail_time(seconds: float) -> str:
    """CloudTrail writes timestamps inside responseElements like `Jun 11, 2025, 10:05:44 AM`."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return f"{moment:%b} {moment.day}, {moment.year}, {moment.hour % 12 or 12}:{moment:%M:%S %p}"


def _as_cloudtrail_writes(node: Any) -> Any:
    if isinstance(node, list):
        return [_as_cloudtrail_writes(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: _cloudtrail_time(value)
        if key.endswith("At") and isinstance(value, int | float) and not isinstance(value, bool)
        else _as_cloudtrail_writes(value)
        for key, value in node.items()
    }


def _call_resources(request: dict[str, Any], scope: Scope) -> list[dict[str, str]] | None:
    """The repository a call is about, as CloudTrail lists it; registry-level calls list none."""
    if request.get("resourceArn"):
        return [{"accountId": scope.account, "ARN": str(request["resourceArn"])}]
    if request.get("repositoryName"):
        registry = str(request.get("registryId") or scope.account)
        arn = f"arn:aws:ecr:{scope.region}:{registry}:repository/{request['repositoryName']}"
        return [{"accountId": registry, "ARN": arn}]
    return None


def cloudtrail_event(
    operation: str,
    request: dict[str, Any],
    response: dict[str, Any] | None,
    identity: dict[str, Any],
    user_agent: str,
    scope: Scope,
) -> dict[str, Any]:
    """An `AWS API Call via CloudTrail` event for an ECR call, in the shape CloudTrail delivers to EventBridge:
    requestParameters as the client sent them, responseElements as ECR answered (timestamps written as CloudTrail
    writes them), and the repository in detail.resources."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    request_parameters = {k: v for k, v in request.items() if k not in ("imageManifest",)}
    detail: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": now,
        "eventSource": "ecr.amazonaws.com",
        "eventName": operation,
        "awsRegion": scope.region,
        "sourceIPAddress": "127.0.0.1",
        "userAgent": user_agent,
        "requestParameters": request_parameters or None,
        "responseElements": _as_cloudtrail_writes(response) or None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": scope.account,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": f"api.ecr.{scope.region}.amazonaws.com",
        },
    }
    resources = _call_resources(request, scope)
    if resources:
        detail["resources"] = resources
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ecr",
        "account": scope.account,
        "time": now,
        "region": scope.region,
        "resources": [],
        "detail": detail,
    }


def assumed_role_identity(role_arn: str, session: str, account_id: str, access_key: str) -> dict[str, Any]:
    """A caller with credentials from AssumeRole, as CloudTrail names it (the role's path is not in the
    assumed-role ARN, only in the issuer's)."""
    role_name = role_arn.rsplit("/", 1)[-1]
    return {
        "type": "AssumedRole",
        "principalId": f"AROALOCAL:{session}",
        "accountId": account_id,
        "accessKeyId": access_key,
        "arn": f"arn:aws:sts::{account_id}:assumed-role/{role_name}/{session}",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROALOCAL",
                "arn": role_arn,
                "accountId": account_id,
                "userName": role_name,
            }
        },
    }


def caller_identity(user_agent: str, role_for: Callable[[str], str | None], account_id: str) -> dict[str, Any]:
    """Who made a call, as CloudTrail would say: a function's assumed role, or the local admin user."""
    match = _FUNCTION_AGENT.search(user_agent)
    role_arn = role_for(match.group("name")) if match else None
    if role_arn:
        session = match.group("name") if match else "local"
        return assumed_role_identity(role_arn, session, account_id, "ASIALOCALEXAMPLEKEY1")
    return {
        "type": "IAMUser",
        "principalId": "AIDALOCAL",
        "accountId": account_id,
        "accessKeyId": "AKIALOCALEXAMPLEKEY1",
        "arn": f"arn:aws:iam::{account_id}:user/local-admin",
        "userName": "local-admin",
    }


def image_action_events(
    operation: str, request: dict[str, Any], response: dict[str, Any], region: str, account_id: str
) -> list[dict[str, Any]]:
    """`ECR Image Action` events for PutImage (PUSH) and BatchDeleteImage (DELETE), as ECR emits them."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def event(action: str, repository: str, digest: str, tag: str | None, media_type: str | None) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "result": "SUCCESS",
            "repository-name": repository,
            "image-digest": digest,
            "action-type": action,
        }
        if tag:
            detail["image-tag"] = tag
        if media_type:
            detail["manifest-media-type"] = media_type
            detail["artifact-media-type"] = "application/vnd.docker.container.image.v1+json"
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "ECR Image Action",
            "source": "aws.ecr",
            "account": account_id,
            "time": now,
            "region": region,
            "resources": [],
            "detail": detail,
        }

    if operation == "PutImage":
        image = response.get("image") or {}
        ids = image.get("imageId") or {}
        return [
            event(
                "PUSH",
                image.get("repositoryName", request.get("repositoryName", "")),
                ids.get("imageDigest", ""),
                ids.get("imageTag") or request.get("imageTag"),
                image.get("imageManifestMediaType") or request.get("imageManifestMediaType"),
            )
        ]
    if operation == "BatchDeleteImage":
        return [
            event(
                "DELETE",
                request.get("repositoryName", ""),
                ids.get("imageDigest", ""),
                ids.get("imageTag"),
                None,
            )
            for ids in response.get("imageIds") or []
        ]
    return []
