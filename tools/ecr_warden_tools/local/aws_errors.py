"""Errors as AWS answers them, so an SDK client gets a ClientError with a code, never an HTML page to decode.

JSON-protocol services (X-Amz-Target, and the REST-JSON ones such as Lambda, Inspector2 and Scheduler) get
`{"__type": ..., "message": ...}` with `x-amzn-ErrorType`; query-protocol calls (form-encoded `Action=...`) and S3
get the XML `ErrorResponse` their parsers read.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

StartResponse = Callable[..., Any]

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/(?P<service>[^/]+)/aws4_request")
_XML_SERVICES = frozenset({"s3"})


def service_name(environ: dict[str, Any]) -> str:
    """The signing name of the service called (`ecr`, `sqs`, ...), from the SigV4 credential scope."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group("service") if match else "unknown"


def _form_action(environ: dict[str, Any]) -> str | None:
    if "x-www-form-urlencoded" not in environ.get("CONTENT_TYPE", ""):
        return None
    getvalue = getattr(environ.get("wsgi.input"), "getvalue", None)
    raw: bytes = getvalue() if getvalue is not None else b""
    actions = parse_qs(raw.decode("utf-8", "replace")).get("Action") or []
    return actions[0] if actions else None


def operation_name(environ: dict[str, Any]) -> str:
    """`ecr:PutImage`-style name of the call, for messages: the JSON target, the query action, or method and path."""
    service = service_name(environ)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    action = _form_action(environ)
    if action:
        return f"{service}:{action}"
    return f"{service}:{environ.get('REQUEST_METHOD', 'GET')} {environ.get('PATH_INFO', '/')}"


def _wants_xml(environ: dict[str, Any]) -> bool:
    if environ.get("HTTP_X_AMZ_TARGET"):
        return False
    return _form_action(environ) is not None or service_name(environ) in _XML_SERVICES


@dataclass(frozen=True)
class AwsError:
    status: str  # "400 Bad Request"
    code: str
    message: str

    def respond(self, environ: dict[str, Any], start_response: StartResponse, exc_info: Any = None) -> list[bytes]:
        request_id = str(uuid.uuid4())
        if _wants_xml(environ):
            kind = "Sender" if self.status.startswith("4") else "Receiver"
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>{kind}</Type>'
                f"<Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            ).encode()
            content_type = "text/xml"
        else:
            body = json.dumps({"__type": self.code, "message": self.message}).encode()
            content_type = "application/x-amz-json-1.1"
        headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", self.code),
        ]
        start_response(self.status, headers, exc_info)
        return [body]
