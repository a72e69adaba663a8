"""The registry of remediation actions (after Cloud Custodian's action registry): an action declares its name,
its input model and the IAM actions it needs; the template grants a function exactly what its actions declare
(tests/unit/test_template.py compares)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, StringConstraints

from ecr_warden.contracts.parsing import validate_model
from ecr_warden.errors import ConfigurationError, EventValidationError, PermanentError
from ecr_warden.gate.acting import Actor
from ecr_warden.gate.context import Outcome

if TYPE_CHECKING:
    from ecr_warden.admin.ports import AdminTools

InputT = TypeVar("InputT", bound=BaseModel)

# Who asked and why, as an admin request states them: printable text only (they end up in logs, records, Slack).
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
PRINTABLE_LINES = r"^[^\x00-\x08\x0b-\x1f\x7f]+$"  # tabs and newlines allowed
Who = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=PRINTABLE)]
Why = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=1000, pattern=PRINTABLE_LINES)]


class RequestRejected(PermanentError):
    """A well-formed request the current state refuses (no such repository, an expiry too far, ...): nothing was
    changed. `field` names the request field at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


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


class AdminAction(Generic[InputT]):
    """An action only the admin function runs (it needs more than the gate: ecr-warden's exemption store, ECR's
    scanner, the settings guard). Subclasses set the class attributes and implement run()."""

    name: ClassVar[str]
    input_model: ClassVar[type[BaseModel]]
    permissions: ClassVar[frozenset[str]]

    def check(self, request: InputT) -> None:
        """Checks of the request alone, before any AWS call (RequestRejected names the field)."""

    def run(self, request: InputT, tools: AdminTools) -> dict[str, Any]:
        raise NotImplementedError


ACTIONS: dict[str, type[RemediationAction[Any]]] = {}
ADMIN_ACTIONS: dict[str, type[AdminAction[Any]]] = {}
ActionT = TypeVar("ActionT", bound=type[RemediationAction[Any]])
AdminActionT = TypeVar("AdminActionT", bound=type[AdminAction[Any]])


def _declared(action: type[Any]) -> None:
    if not getattr(action, "permissions", None):
        raise ConfigurationError(f"remediation action {action.__name__} declares no IAM permissions")
    if action.name in ACTIONS or action.name in ADMIN_ACTIONS:
        raise ConfigurationError(f"remediation action {action.name!r} is registered twice")


def register(action: ActionT) -> ActionT:
    _declared(action)
    ACTIONS[action.name] = action
    return action


def register_admin(action: AdminActionT) -> AdminActionT:
    _declared(action)
    ADMIN_ACTIONS[action.name] = action
    return action


def find(name: str) -> RemediationAction[Any]:
    action = ACTIONS.get(name)
    if action is None:
        known = ", ".join(sorted(ACTIONS))
        raise EventValidationError(what="remediation request", field="action", reason=f"unknown; use one of {known}")
    return action()


def permissions_of(*names: str) -> frozenset[str]:
    """The IAM actions the named remediation actions (gate or admin) need, together."""
    return frozenset().union(*((ACTIONS.get(name) or ADMIN_ACTIONS[name]).permissions for name in names))
