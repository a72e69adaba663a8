"""The policy from SSM Parameter Store (cached by Powertools Parameters); the last valid one keeps working."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ecr_warden.adapters.aws import error_code, parameters_provider
from ecr_warden.errors import ConfigurationError, TransientError
from ecr_warden.observability import MetricUnit, logger, metrics
from ecr_warden.policy.load import InvalidPolicyError, default_policy, parse_policy
from ecr_warden.policy.model import Policy

IAM_ACTIONS = frozenset({"ssm:GetParameter"})
# What retrying cannot fix (the parameter is missing, or the role may not read it); anything else (throttling,
# 5xx, a connection error at cold start) is transient and the event is retried, not parked.
PERMANENT_SSM_ERRORS = frozenset(
    {"ParameterNotFound", "ParameterVersionNotFound", "AccessDeniedException", "ValidationException"}
)


def _error_code_behind(exc: BaseException) -> str:
    """Powertools wraps the SDK error in GetParameterError without chaining it; it is the implicit context."""
    cause = exc.__cause__ or exc.__context__
    return error_code(cause) if isinstance(cause, Exception) else ""


CACHE_SECONDS = 300


def ssm_provider() -> Any:
    """Powertools' SSM provider on the client factory's SSM client (see aws.parameters_provider)."""
    from aws_lambda_powertools.utilities.parameters import SSMProvider

    return parameters_provider("ssm", "ssm", SSMProvider)


@dataclass
class SsmPolicySource:
    parameter_name: str | None
    _last_valid: Policy | None = None
    _parsed: dict[str, Policy] = field(default_factory=dict)
    _rejected: set[str] = field(default_factory=set)

    def get(self) -> Policy:
        if not self.parameter_name:
            return self._remember(default_policy())
        from aws_lambda_powertools.utilities import parameters

        try:
            text = str(ssm_provider().get(self.parameter_name, max_age=CACHE_SECONDS))
        except parameters.exceptions.GetParameterError as exc:
            if self._last_valid is not None:
                logger.warning(
                    "policy parameter unreadable, keeping the last valid policy",
                    parameter=self.parameter_name,
                    error=str(exc),
                )
                return self._last_valid
            if _error_code_behind(exc) in PERMANENT_SSM_ERRORS:
                raise ConfigurationError(f"policy parameter {self.parameter_name}: {exc}") from exc
            raise TransientError(f"policy parameter {self.parameter_name} unreadable for now: {exc}") from exc
        key = hashlib.sha256(text.encode()).hexdigest()
        if key in self._parsed:
            return self._remember(self._parsed[key])
        try:
            policy = parse_policy(text, source=self.parameter_name)
        except InvalidPolicyError as exc:
            fallback = self._last_valid or default_policy()
            if key not in self._rejected:  # report each bad version once per container, not per event
                self._rejected.add(key)
                logger.error(
                    "policy rejected, keeping the last valid policy",
                    parameter=self.parameter_name,
                    error=str(exc),
                    fallback="last valid" if self._last_valid else "built-in default",
                )
                metrics.add_metric(name="PolicyRejected", unit=MetricUnit.Count, value=1)
            return fallback
        self._parsed = {key: policy}
        return self._remember(policy)

    def _remember(self, policy: Policy) -> Policy:
        self._last_valid = policy
        return policy
