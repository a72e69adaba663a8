"""Slack incoming webhooks through slack_sdk, with its retry handlers. The URL is a secret: it is read from
Secrets Manager (cached by Powertools Parameters) and never logged, raised or counted."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ecr_warden.adapters.aws import parameters_provider
from ecr_warden.errors import SlackConfigurationError, SlackDeliveryError, SlackPayloadError

IAM_ACTIONS = frozenset({"secretsmanager:GetSecretValue"})
SECRET_CACHE_SECONDS = 300
# Answers that mean the webhook itself is wrong: retrying cannot help until someone fixes the configuration.
CONFIGURATION_ERRORS = frozenset(
    {
        "invalid_token",
        "channel_not_found",
        "channel_is_archived",
        "no_service",
        "no_service_id",
        "no_team",
        "team_disabled",
        "action_prohibited",
        "posting_to_general_channel_denied",
        "invalid_webhook",
    }
)
# slack_sdk logs request URLs at DEBUG; this logger never goes below WARNING, whatever the log level.
_quiet = logging.getLogger("ecr_warden.slack_sdk")
_quiet.setLevel(logging.WARNING)


def secrets_provider() -> Any:
    """Powertools' Secrets Manager provider on the client factory's client (see aws.parameters_provider)."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return parameters_provider("secrets", "secretsmanager", SecretsProvider)


def _retry_handlers() -> list[Any]:
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )
    from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
    from slack_sdk.http_retry.jitter import RandomJitter

    backoff = BackoffRetryIntervalCalculator(backoff_factor=0.5, jitter=RandomJitter())

    class AnyServerErrorRetryHandler(ServerErrorRetryHandler):
        """slack_sdk retries 500 and 503 only; a 502 or 504 from Slack's edge is as transient."""

        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            return response is not None and 500 <= response.status_code <= 599

    return [
        ConnectionErrorRetryHandler(max_retry_count=3, interval_calculator=backoff),
        RateLimitErrorRetryHandler(max_retry_count=3),  # sleeps for Retry-After
        AnyServerErrorRetryHandler(max_retry_count=3, interval_calculator=backoff),
    ]


@dataclass
class SlackWebhooks:
    default_secret: str | None
    timeout_seconds: int = 10
    _handlers: list[Any] = field(default_factory=list)

    def url(self, route: str, secret: str | None) -> str:
        from aws_lambda_powertools.utilities import parameters

        name = secret or self.default_secret
        if not name:
            raise SlackConfigurationError(route, "no webhook secret configured")
        try:
            value = secrets_provider().get(name, max_age=SECRET_CACHE_SECONDS, transform="json")
        except (parameters.exceptions.GetParameterError, parameters.exceptions.TransformParameterError) as exc:
            raise SlackConfigurationError(route, f"webhook secret unreadable ({type(exc).__name__})") from None
        url = value.get("url") if isinstance(value, dict) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise SlackConfigurationError(route, 'webhook secret has no "url"; set {"url": "https://hooks..."}')
        return url

    def post(self, route: str, url: str, message: dict[str, Any]) -> None:
        # slack_sdk's package imports its WebClient, and the webhook client asyncio (via slack_sdk.web.internal_utils):
        # 40-68 ms of the first post with bytecode, 112-162 ms without. Kept: slack_sdk is the project's Slack client,
        # and only replacing its package modules would avoid part of it (docs/PERFORMANCE.md).
        from slack_sdk.webhook import WebhookClient

        client = WebhookClient(
            url, timeout=self.timeout_seconds, logger=_quiet, retry_handlers=self._handlers or _retry_handlers()
        )
        try:
            response = client.send(text=message["text"], blocks=message["blocks"])
        except Exception as exc:  # connection failures after the retries; never echo the URL
            raise SlackDeliveryError(f"route {route!r}: {type(exc).__name__} after retries") from None
        body = (response.body or "").strip()
        if response.status_code == 200:
            return
        if response.status_code in (403, 404, 410) or body in CONFIGURATION_ERRORS:
            raise SlackConfigurationError(route, f"HTTP {response.status_code} {body[:80]}")
        if response.status_code == 400:
            raise SlackPayloadError(f"route {route!r}: Slack rejected the message: {body[:200]}")
        raise SlackDeliveryError(f"route {route!r}: HTTP {response.status_code} {body[:80]} after retries")
