"""boto3 clients, created on first use: paths that never call a service never pay for its client."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from ecr_warden import __version__


def user_agent_extra() -> str:
    # CloudTrail records the user agent: it tells ecr-warden's own calls apart (see loop safety in the README).
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "cli")
    return f"ecr-warden/{__version__} fn/{function}"


@cache
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    # adaptive: standard retries (throttling, 5xx, connection errors) plus client-side rate limiting when
    # ECR/Inspector throttle a burst of events.
    config = Config(
        retries={"mode": "adaptive", "max_attempts": 8},
        user_agent_extra=user_agent_extra(),
        connect_timeout=5,
        read_timeout=30,
    )
    return boto3.client(service, config=config)  # type: ignore[call-overload]


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
