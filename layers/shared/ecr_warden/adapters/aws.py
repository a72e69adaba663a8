"""boto3 clients, created on first use and keyed by (service, account, region): paths that never call a service
never pay for its client, and the same code acts in another account or region through an assumed role."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ecr_warden import __version__
from ecr_warden.domain.images import Scope

MAX_CLIENTS = 64  # clients kept, least recently used first out: 21 registries' ECR, Inspector and KMS clients


def user_agent_extra() -> str:
    # CloudTrail records the user agent: it tells ecr-warden's own calls apart (see loop safety in the README).
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "cli")
    return f"ecr-warden/{__version__} fn/{function}"


def _config() -> Any:
    from botocore.config import Config

    # adaptive: standard retries (throttling, 5xx, connection errors) plus client-side rate limiting when
    # ECR/Inspector throttle a burst of events.
    return Config(
        retries={"mode": "adaptive", "max_attempts": 8},
        user_agent_extra=user_agent_extra(),
        connect_timeout=5,
        read_timeout=30,
    )


class ClientFactory:
    """One client per (service, account, region). The home account (or no scope) uses the function's own
    credentials; another account is reached through `role_name` in that account, assumed with credentials that
    botocore refreshes before they expire."""

    def __init__(self, role_name: str | None = None, home_account: str | None = None) -> None:
        self.role_name, self.home_account = role_name, home_account
        self._clients: OrderedDict[tuple[str, str | None, str | None], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._base: Any = None

    def client(self, service: str, scope: Scope | None = None) -> Any:
        assume = self._needs_role(scope)
        key = (service, scope.account if scope and assume else None, scope.region if scope else None)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._create(service, scope, assume)
                while len(self._clients) > MAX_CLIENTS:  # a warm container that met many accounts and regions
                    self._clients.popitem(last=False)
            self._clients.move_to_end(key)
            return self._clients[key]

    def _needs_role(self, scope: Scope | None) -> bool:
        return bool(scope and self.role_name and scope.account != self.home_account)

    def _create(self, service: str, scope: Scope | None, assume: bool) -> Any:
        import boto3

        region = scope.region if scope else None
        if not assume:
            return boto3.client(service, region_name=region, config=_config())  # type: ignore[call-overload]
        assert scope is not None
        return self._assumed_session(scope).client(service, config=_config())

    def _assumed_session(self, scope: Scope) -> Any:
        import boto3
        from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials
        from botocore.session import Session

        if self._base is None:
            self._base = boto3.Session()
        base = self._base
        partition = base.get_partition_for_region(scope.region)
        fetcher = AssumeRoleCredentialFetcher(
            client_creator=base._session.create_client,
            source_credentials=base.get_credentials(),
            role_arn=f"arn:{partition}:iam::{scope.account}:role/{self.role_name}",
            extra_args={"RoleSessionName": f"ecr-warden-{os.environ.get('AWS_LAMBDA_FUNCTION_NAME', 'cli')}"[:64]},
        )
        session = Session()
        # One copy of botocore's service models for every account: a session of its own would load and keep its
        # own (about 35 MiB per account for ECR and Inspector), and a warm container meets many accounts.
        session.register_component("data_loader", base._session.get_component("data_loader"))
        session._credentials = DeferredRefreshableCredentials(  # type: ignore[attr-defined]  # botocore's way
            method="assume-role", refresh_using=fetcher.fetch_credentials
        )
        return boto3.Session(botocore_session=session, region_name=scope.region)

    def reset(self) -> None:
        with self._lock:
            self._clients.clear()
            self._base = None


_factory = ClientFactory()


def configure(role_name: str | None, home_account: str | None) -> None:
    """Set how other accounts are reached (the member role's name); clients made so far are kept."""
    _factory.role_name, _factory.home_account = role_name, home_account


def client(service: str, scope: Scope | None = None) -> Any:
    return _factory.client(service, scope)


def reset_clients() -> None:
    """Forget every client (tests switch endpoints and credentials between cases)."""
    _factory.reset()


def parameters_provider(kind: str, service: str, provider_class: Callable[..., Any]) -> Any:
    """Powertools' default Parameters provider `kind` ("ssm", "secrets") on this factory's client for `service`.
    Left to itself a provider builds a boto3 session of its own, with a second copy of botocore's endpoint data
    (tens of ms of a cold start, and memory: docs/PERFORMANCE.md). Registered as Powertools' default provider, so
    `parameters.get_*` and `parameters.clear_caches()` keep working; a new client (tests reset them) gets a new
    provider, with an empty cache."""
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    made = client(service)
    provider = DEFAULT_PROVIDERS.get(kind)
    if getattr(provider, "client", None) is not made:
        provider = DEFAULT_PROVIDERS[kind] = provider_class(boto3_client=made)
    return provider


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
