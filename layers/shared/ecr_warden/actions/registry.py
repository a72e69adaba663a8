"""The registry of remediation actions (after Cloud Custodian's action registry): an action declares its name,
its input model and the IAM actions it needs; the template grants a function exactly what its actions declare
(tests/unit/test_template.py compares)."""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from ecr_warden.contracts.parsing import validate_model
from ecr_warden.errors import ConfigurationError, EventValidationError
from ecr_warden.gate.acting import Actor
from ecr_warden.gate.context import Outcome

InputT = TypeVar("InputT", bound=BaseModel)


class RemediationAction(Generic[InputT]):
    """One admin action. Subclasses set the class attributes and implement run(); register() checks them."""

    name: ClassVar[str]
    input_model: ClassVar[type[BaseModel]]
    permissions: ClassVar[frozenset[str]]

    def run(self, request: InputT, gate: Actor) -> Outcome:
        raise NotImplementedError

    def invoke(self, payload: Any, gate: Actor) -> Outcome:
        """Validate the payload (a clear error naming the field, nothing changed), then act."""
        request: InputT = validate_model(self.input_model, payload, what=f"{self.name} request")  # type: ignore[assignment]
        return self.run(request, gate)


ACTIONS: dict[str, type[RemediationAction[Any]]] = {}
ActionT = TypeVar("ActionT", bound=type[RemediationAction[Any]])


def register(action: ActionT) -> ActionT:
    if not getattr(action, "permissions", None):
        raise ConfigurationError(f"remediation action {action.__name__} declares no IAM permissions")
    if action.name in ACTIONS:
        raise ConfigurationError(f"remediation action {action.name!r} is registered twice")
    ACTIONS[action.name] = action
    return action


def find(name: str) -> RemediationAction[Any]:
    action = ACTIONS.get(name)
    if action is None:
        known = ", ".join(sorted(ACTIONS))
        raise EventValidationError(what="remediation request", field="action", reason=f"unknown; use one of {known}")
    return action()


def permissions_of(*names: str) -> frozenset[str]:
    """The IAM actions the named remediation actions need, together."""
    return frozenset().union(*(ACTIONS[name].permissions for name in names))
