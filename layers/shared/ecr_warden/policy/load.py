"""Turn policy text (YAML or JSON) into a validated Policy, with one clear error when it is not."""

from __future__ import annotations

import json
from typing import Any

from ecr_warden.contracts.parsing import validate_model
from ecr_warden.errors import ConfigurationError, EventValidationError
from ecr_warden.policy.model import Policy


class InvalidPolicyError(ConfigurationError):
    pass


def parse_policy(text: str, source: str = "policy") -> Policy:
    document: Any
    try:
        document = json.loads(text)
    except ValueError:
        import yaml  # YAML only when the text is not JSON: keeps it off the cold-start path

        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidPolicyError(f"{source}: neither JSON nor YAML: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidPolicyError(f"{source}: the policy must be a mapping")
    try:
        return validate_model(Policy, document, what="policy")
    except EventValidationError as exc:
        raise InvalidPolicyError(f"{source}: {exc}") from None


def default_policy_text() -> str:
    from importlib import resources  # only without a policy parameter: off the cold-start path

    return resources.files("ecr_warden.policy").joinpath("default-policy.yaml").read_text(encoding="utf-8")


def default_policy() -> Policy:
    return parse_policy(default_policy_text(), source="default-policy.yaml")
