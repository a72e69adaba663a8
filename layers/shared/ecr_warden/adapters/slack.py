"""Slack incoming webhooks through slack_sdk, with its retry handlers. The URL is a secret: it is read from
Secrets Manager (cached by Powertools Parameters) and never logged, raised or counted."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ecr_warden.adapters.aws import error_code, parameters_provider
from ecr_warden.errors import SlackConfigurationError, SlackDeliveryError, SlackPayloadError, TransientError

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
# Secrets Manager's answers that retrying cannot fix: the secret is missing, or the role may not read it.
PERMANENT_SECRET_ERRORS = frozenset(
    {"ResourceNotFoundException", "AccessDeniedException", "DecryptionFailure", "InvalidRequestException",
     "InvalidParameterException"}
)  # fmt: skip
SLACK_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})  # plain http allowed: the tests' and local stack's catchers
# scheme://host[:port]/path, nothing else: no user info, query, fragment, whitespace or control characters
_URL_SHAPE = re.compile(r"(?P<scheme>https?)://(?P<host>[A-Za-z0-9.-]+)(?::\d{1,5})?(?:/[A-Za-z0-9._~%-]+)+")
_MALFORMED = "webhook URL is malformed (expected https://hooks.slack.com/services/...)"

# slack_sdk logs the request URL at DEBUG and, on a connection error, the error at ERROR (urllib's errors quote
# the URL). It gets a logger of its own that is silent at every level and not in logging's registry, so no
# configuration can turn it on or route it elsewhere.
_silenced = logging.Logger("ecr_warden.slack_sdk", level=logging.CRITICAL + 1)
_silenced.propagate = False
_silenced.disabled = True
_silenced.addHandler(logging.NullHandler())


def checked_url(route: str, url: object, allowed_hosts: frozenset[str] = SLACK_HOSTS) -> str:
    """The webhook URL if it is well-formed https to an allowed host (or http(s) to loopback); otherwise a
    SlackConfigurationError that does not echo it."""
    shape = _URL_SHAPE.fullmatch(url) if isinstance(url, str) else None
    if shape is None:
        raise SlackConfigurationError(route, _MALFORMED)
    host = shape["host"].lower()
    if not (host in LOOPBACK_HOSTS or (shape["scheme"] == "https" and host in allowed_hosts)):
        raise SlackConfigurationError(route, _MALFORMED)
    if urlsplit(str(url)).hostname != host:  # what urllib will connect to is what was checked
        raise SlackConfigurationError(route, _MALFORMED)
    return str(url)


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
    allowed_hosts: frozenset[str] = SLACK_HOSTS
    _handlers: list[Any] = field(default_factory=list)

    def url(self, route: str, secret: str | None) -> str:
        from aws_lambda_powertools.utilities import parameters

        name = secret or self.default_secret
        if not name:
            raise SlackConfigurationError(route, "no webhook secret configured")
        try:
            value = secrets_provider().get(name, max_age=SECRET_CACHE_SECONDS, transform="json")
        except parameters.exceptions.GetParameterError as exc:
            # as for the policy parameter: only what Secrets Manager says is permanent is a configuration error;
            # throttling, a 5xx or a timeout is retried (Lambda), not parked as a misconfigured route
            cause = exc.__cause__ or exc.__context__
            code = error_code(cause) if isinstance(cause, Exception) else ""
            if code in PERMANENT_SECRET_ERRORS:
                raise SlackConfigurationError(route, f"webhook secret unreadable ({code})") from None
            raise TransientError(
                f"route {route!r}: webhook secret unreadable for now ({code or 'no answer'})"
            ) from None
        except parameters.exceptions.TransformParameterError as exc:
            raise SlackConfigurationError(route, f"webhook secret unreadable ({type(exc).__name__})") from None
        url = value.get("url") if isinstance(value, dict) else None
        if url is None:
            raise SlackConfigurationError(route, 'webhook secret has no "url"; set {"url": "https://hooks..."}')
        return checked_url(route, url, self.allowed_hosts)

    def post(self, route: str, url: str, message: dict[str, Any]) -> None:
        # slack_sdk's package imports its WebClient, and the webhook client asyncio (via slack_sdk.web.internal_utils):
        # 40-68 ms of the first post with bytecode, 112-162 ms without. Kept: slack_sdk is the project's Slack client,
        # and only replacing its package modules would avoid part of it (docs/PERFORMANCE.md).
        from slack_sdk.webhook import WebhookClient

        client = WebhookClient(
            checked_url(route, url, self.allowed_hosts),
            timeout=self.timeout_seconds,
            logger=_silenced,
            retry_handlers=self._handlers or _retry_handlers(),
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
