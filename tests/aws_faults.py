"""Fault injection at the botocore level, for the permanent fault-injection and concurrency suites.

- AwsFaults is attached to every boto3 client the code under test makes (through ecr_warden.adapters.aws's client
  factory, `install`). It counts each AWS call per invocation (`ecr:PutImage#2` is the second PutImage of the
  current invocation) and, at the planned calls, answers with a real botocore failure instead of sending the
  request: a throttling error (HTTP 400 with the service's own throttling code), an HTTP 500 (the service's own
  internal-error code) or a timeout (botocore's ReadTimeoutError / ConnectTimeoutError). The fault is answered in
  `before-call`, after botocore's own retries would have run: what the Lambda invocation sees once the SDK has
  given up. The request never reaches the service, so a fault never has a side effect.
- Calls that did reach the service and succeeded are recorded (`effects`), so a test counts real SNS publishes,
  PutEvents and so on, whatever the code under test believes.
- moto has no UpdateImageStorageClass: AwsFaults plays it (and shows the storage class in DescribeImages).
- `deliver_async` is Lambda's asynchronous invocation: the first attempt and two retries, then the on-failure
  destination. `atomic_moto` makes each moto request atomic, as each AWS API call is, so threads interleave
  between calls (where real races are) and never inside one.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

LAMBDA_ATTEMPTS = 3  # the invocation and Lambda's two asynchronous retries (MaximumRetryAttempts: 2)
# Lambda waits about a minute before the first retry and two more before the second: a retry never overlaps the
# attempt it retries (the gate's outbox relies on it, see ecr_warden.gate.outbox.IN_FLIGHT)
LAMBDA_RETRY_DELAYS = (60.0, 120.0)
FAULT_KINDS = ("throttling", "server", "read-timeout")  # connect-timeout: raised the same way, before any effect
# "late-timeout": the call takes effect and then its answer times out (ambiguous; see the suites' docstrings)

_THROTTLE_CODES = {
    "dynamodb": "ProvisionedThroughputExceededException",
    "sns": "Throttling",
    "sqs": "RequestThrottled",
}
_SERVER_CODES = {"ecr": "ServerException", "sns": "InternalError", "sqs": "InternalError"}


def fault_response(kind: str, service: str, operation: str) -> tuple[AWSResponse, dict[str, Any]]:
    """What botocore would hand back after its retries: (http response, parsed error body)."""
    if kind == "throttling":
        status, code = 400, _THROTTLE_CODES.get(service, "ThrottlingException")
    elif kind == "server":
        status, code = 500, _SERVER_CODES.get(service, "InternalServerError")
    else:
        raise ValueError(kind)
    parsed = {
        "Error": {"Code": code, "Message": f"{service}:{operation} failed (injected {kind})"},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "injected"},
    }
    return AWSResponse(f"https://{service}.us-east-1.amazonaws.com/", status, {}, None), parsed  # type: ignore[arg-type]


def raise_fault(kind: str, service: str, operation: str) -> None:
    """The same faults as exceptions, for ports a test plays without a client (moto's Inspector ignores filters)."""
    if kind == "read-timeout":
        raise ReadTimeoutError(endpoint_url=f"https://{service}.us-east-1.amazonaws.com/")
    if kind == "connect-timeout":
        raise ConnectTimeoutError(endpoint_url=f"https://{service}.us-east-1.amazonaws.com/")
    _, parsed = fault_response(kind, service, operation)
    raise ClientError(parsed, operation)  # type: ignore[arg-type]


@dataclass
class Shot:
    """Fail the `occurrence`-th call of `operation` ("ecr:PutImage") in an invocation, `times` times in all."""

    operation: str
    occurrence: int
    kind: str
    times: int = 1

    @property
    def point(self) -> str:
        return f"{self.operation}#{self.occurrence}"


@dataclass
class AwsFaults:
    shots: list[Shot] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # every call point of every invocation, in order
    effects: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # calls that succeeded: (op, params)
    injected: list[str] = field(default_factory=list)
    storage: dict[tuple[str, str], str] = field(default_factory=dict)  # (repository, digest) -> ARCHIVE
    _seen: Counter[str] = field(default_factory=Counter)  # calls per operation in the current invocation
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- the test's side ----------------------------------------------------------------------------------------

    def plan(self, operation: str, occurrence: int, kind: str, times: int = 1) -> Shot:
        shot = Shot(operation, occurrence, kind, times)
        self.shots.append(shot)
        return shot

    def new_invocation(self) -> None:
        with self._lock:
            self._seen.clear()

    def reset(self) -> None:
        """A new case: no planned faults, no calls seen (what took effect is kept: cases filter it by image)."""
        with self._lock:
            self.shots.clear()
            self.calls.clear()
            self.injected.clear()
            self._seen.clear()

    def succeeded(self, operation: str) -> list[dict[str, Any]]:
        return [params for op, params in self.effects if op == operation]

    # -- the clients' side --------------------------------------------------------------------------------------

    def attach(self, client: Any) -> Any:
        service = client.meta.service_model.service_name  # "ecr", "dynamodb", "secretsmanager", ...
        client.meta.events.register("before-parameter-build.*.*", _keep_params)
        client.meta.events.register("before-call.*.*", self._before(service))
        client.meta.events.register("after-call.*.*", self._after(service))
        return client

    def call(self, service: str, operation: str) -> None:
        """A call of a port the test plays itself: counted and failed like a client's."""
        kind = self._due(f"{service}:{operation}")
        if kind is not None:
            raise_fault(kind, service, operation)

    def _due(self, operation: str) -> str | None:
        with self._lock:
            self._seen[operation] += 1
            point = f"{operation}#{self._seen[operation]}"
            self.calls.append(point)
            for shot in self.shots:
                if shot.times > 0 and shot.point == point:
                    shot.times -= 1
                    self.injected.append(f"{point}:{shot.kind}")
                    return shot.kind
            return None

    def _before(self, service: str) -> Callable[..., Any]:
        def before(model: Any, context: dict[str, Any], **_: Any) -> Any:
            operation = f"{service}:{model.name}"
            params = context.get("api_params", {})
            kind = self._due(operation)
            if kind == "late-timeout":  # the request goes through; its answer is lost (see _after)
                context["late_timeout"] = True
                kind = None
            if kind in ("read-timeout", "connect-timeout"):
                raise_fault(kind, service, model.name)
            if kind is not None:
                return fault_response(kind, service, model.name)
            if operation == "ecr:UpdateImageStorageClass":  # moto lacks it: play ECR
                image = (params["repositoryName"], params["imageId"]["imageDigest"])
                target = params["targetStorageClass"]
                with self._lock:
                    self.storage[image] = target
                    self.effects.append((operation, params))
                body = {"repositoryName": image[0], "imageId": params["imageId"], "imageStatus": target}
                return AWSResponse("https://ecr/", 200, {}, None), body  # type: ignore[arg-type]
            return None

        return before

    def _after(self, service: str) -> Callable[..., Any]:
        def after(http_response: Any, parsed: dict[str, Any], model: Any, **kwargs: Any) -> None:
            operation = f"{service}:{model.name}"
            context = kwargs.get("context", {})
            if operation == "ecr:UpdateImageStorageClass" or getattr(http_response, "status_code", 500) >= 300:
                return
            with self._lock:
                self.effects.append((operation, dict(context.get("api_params", {}))))
            if context.get("late_timeout"):  # it took effect, but the caller never learns
                raise ReadTimeoutError(endpoint_url=f"https://{service}.us-east-1.amazonaws.com/")
            if operation == "ecr:DescribeImages":
                repository = parsed.get("repositoryName")
                for detail in parsed.get("imageDetails") or []:
                    archived = self.storage.get((detail.get("repositoryName", repository), detail["imageDigest"]))
                    detail["imageStatus"] = "ARCHIVED" if archived == "ARCHIVE" else "ACTIVE"

        return after


def install(monkeypatch: pytest.MonkeyPatch, faults: AwsFaults) -> None:
    """Attach `faults` to every client ecr_warden's client factory makes from now on (and forget the old ones)."""
    from ecr_warden.adapters import aws as aws_clients

    factory = aws_clients._factory
    create = factory._create
    aws_clients.reset_clients()
    monkeypatch.setattr(factory, "_create", lambda *args: faults.attach(create(*args)))


def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """Each request's API parameters, in its context for the later events."""
    context["api_params"] = dict(params)


def announcements(decisions: list[Any]) -> list[str]:
    """The actions of distinct announcements. An announcement is identified by its decision_id: the same decision
    event delivered again (EventBridge delivers at least once; an outbox retry resends under the same id) is one
    announcement, which consumers deduplicate; two ids for one action are two announcements."""
    seen: dict[str, str] = {}
    for decision in decisions:
        detail = decision if isinstance(decision, dict) else decision.model_dump(mode="json")
        action = seen.setdefault(detail["decision_id"], detail["action"])
        assert action == detail["action"], (
            f"decision {detail['decision_id']} announced as {action} and {detail['action']}"
        )
    return list(seen.values())


# -- Lambda's asynchronous invocation --------------------------------------------------------------------------


@dataclass
class Delivery:
    """What became of one asynchronous invocation: its result, or the errors that sent it on to the DLQ."""

    result: Any = None
    errors: list[BaseException] = field(default_factory=list)
    parked: bool = False

    @property
    def completed(self) -> bool:
        return not self.parked


def deliver_async(
    invoke: Callable[[], Any],
    on_attempt: Callable[[], None] | None = None,
    wait: Callable[[float], None] | None = None,
) -> Delivery:
    """The first attempt and Lambda's two retries; after the last failure the event is parked (on-failure
    destination). `on_attempt` runs before each attempt (a fresh invocation: counters, caches); `wait` is told how
    long Lambda waits before each retry (a test's clock moves on by that much)."""
    delivery = Delivery()
    for attempt in range(LAMBDA_ATTEMPTS):
        if attempt and wait is not None:
            wait(LAMBDA_RETRY_DELAYS[attempt - 1])
        if on_attempt is not None:
            on_attempt()
        try:
            delivery.result = invoke()
            return delivery
        except Exception as error:  # the invocation failed: Lambda retries it
            delivery.errors.append(error)
    delivery.parked = True
    return delivery


# -- moto under threads ----------------------------------------------------------------------------------------


@contextmanager
def atomic_moto() -> Iterator[None]:
    """Each request moto serves is atomic (as an AWS API call is); threads interleave only between calls."""
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.RLock()
    real = BotocoreStubber.__call__

    def serialised(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        with lock:
            return real(self, event_name, request, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BotocoreStubber, "__call__", serialised)
        yield
