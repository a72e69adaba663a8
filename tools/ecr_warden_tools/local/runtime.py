"""Run the template's Lambda handlers in this process, with a Lambda-like context and environment."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from ecr_warden_tools.local.provision import FunctionSpec


@dataclass
class LambdaContext:
    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))


@dataclass(frozen=True)
class Invocation:
    function: str
    request_id: str
    detail_type: str | None
    ok: bool
    error: str | None
    duration_ms: float
    result: Any = None


class HandlerError(Exception):
    def __init__(self, error_type: str, message: str, trace: list[str]) -> None:
        super().__init__(message)
        self.error_type, self.message, self.trace = error_type, message, trace

    def payload(self) -> dict[str, Any]:
        return {"errorMessage": self.message, "errorType": self.error_type, "stackTrace": self.trace}


class FunctionRuntime:
    """One invocation at a time across all functions: environment variables are process-wide, as is moto."""

    _lock = threading.RLock()

    def __init__(self, spec: FunctionSpec, base_env: dict[str, str], region: str, account_id: str) -> None:
        self.spec = spec
        self.env = {
            **base_env,
            **spec.environment,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        }
        self.arn = f"arn:aws:lambda:{region}:{account_id}:function:{spec.name}"
        self._module: ModuleType | None = None
        self.invocations: list[Invocation] = []

    def _handler(self) -> Any:
        module_name, function_name = self.spec.handler.rsplit(".", 1)
        if self._module is None:
            path = self.spec.code_dir / f"{module_name}.py"
            unique = f"ecr_warden_local_fn_{self.spec.logical_id}"
            loader_spec = importlib.util.spec_from_file_location(unique, path)
            if loader_spec is None or loader_spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[unique] = module
            loader_spec.loader.exec_module(module)
            self._module = module
        return getattr(self._module, function_name)

    def invoke(self, event: Any) -> Any:
        """Run the handler; raise HandlerError with Lambda's error payload if it fails."""
        context = LambdaContext(self.spec.name, self.arn, self.spec.memory_mb, self.spec.timeout)
        detail_type = event.get("detail-type") if isinstance(event, dict) else None
        started = time.monotonic()
        with self._lock:
            saved = dict(os.environ)
            os.environ.update(self.env)
            try:
                result = self._handler()(json.loads(json.dumps(event)), context)
            except Exception as exc:  # the handler's failure is the invocation's result, as in Lambda
                error = HandlerError(type(exc).__name__, str(exc), traceback.format_exception(exc)[-6:])
                self._record(context, detail_type, started, error=f"{error.error_type}: {error.message}")
                raise error from exc
            finally:
                os.environ.clear()
                os.environ.update(saved)
                _forget_metrics()
        self._record(context, detail_type, started, result=result)
        return result

    def _record(
        self,
        context: LambdaContext,
        detail_type: str | None,
        started: float,
        error: str | None = None,
        result: Any = None,
    ) -> None:
        self.invocations.append(
            Invocation(
                self.spec.logical_id,
                context.aws_request_id,
                detail_type,
                error is None,
                error,
                round((time.monotonic() - started) * 1000, 1),
                result,
            )
        )


def _forget_metrics() -> None:
    """Powertools keeps metrics it may not publish (POWERTOOLS_METRICS_DISABLED, as the stack runs functions) and
    fails once 100 pile up: each Lambda process would publish and clear them after its invocation."""
    from ecr_warden.observability import metrics

    metrics.clear_metrics()
