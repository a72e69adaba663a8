"""The registry of remediation actions (after Cloud Custodian's action registry): an action declares its name,
its input model and the IAM actions it needs; the template grants a function exactly what its actions declare
(tests/unit/test_template.py compares).

Each action lives in its own module, imported the first time its name is asked for (`action_class`): an admin
request loads the one action it names, not all eight and the gate machinery some of them need (the admin
function's cold start, docs/PERFORMANCE.md). `load_all()` imports every one (the template tests, the docs)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, StringConstraints

from ecr_warden.errors import ConfigurationError, EventValidationError, PermanentError

if TYPE_CHECKING:
    from ecr_warden.admin.ports import AdminTools
    from ecr_warden.gate.acting import Actor
    from ecr_warden.gate.context import Outcome

# name -> the module that defines and registers it; release and quarantine run on the gate's Actor, the others on
# the admin tools.
MODULES = {
    "release": "ecr_warden.actions.release",
    "quarantine": "ecr_warden.actions.quarantine",
    "exempt": "ecr_warden.actions.exempt",
    "rescan": "ecr_warden.actions.rescan",
    "enforce": "ecr_warden.actions.enforce",
    "report": "ecr_warden.actions.report",
    "sweep": "ecr_warden.actions.sweep",
    "run": "ecr_warden.actions.run",
}
GATE_ACTIONS = ("release", "quarantine")

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


class ReleaseError(PermanentError):
    """The image cannot be released (unknown to ecr-warden, or not blocked)."""


class RemediationAction(Generic[InputT]):
    """One admin action. Subclasses set the class attributes and implement run(); register() checks them."""

    name: ClassVar[str]
    input_model: ClassVar[type[BaseModel]]
    admin_model: ClassVar[type[BaseModel]]  # the admin function's payload: input_model plus its `action` tag
    permissions: ClassVar[frozenset[str]]

    def run(self, request: InputT, gate: Actor) -> Outcome:
        raise NotImplementedError

    def invoke(self, payload: Any, gate: Actor) -> Outcome:
        """Validate the payload (a clear error naming the field, nothing changed), then act."""
        from ecr_warden.contracts.parsing import validate_model

        request: InputT = validate_model(self.input_model, payload, what=f"{self.name} request")  # type: ignore[assignment]
        return self.run(request, gate)


class AdminAction(Generic[InputT]):
    """An action only the admin function runs (it needs more than the gate: ecr-warden's exemption store, ECR's
    scanner, the settings guard). Subclasses set the class attributes and implement run()."""

    name: ClassVar[str]
    input_model: ClassVar[type[BaseModel]]
    admin_model: ClassVar[type[BaseModel]]  # the admin function's payload: input_model plus its `action` tag
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
    if MODULES.get(action.name) != action.__module__:
        raise ConfigurationError(f"remediation action {action.name!r} is not listed in MODULES under its module")
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


def action_class(name: str) -> type[RemediationAction[Any]] | type[AdminAction[Any]]:
    """The action registered under `name`, its module imported now if it wasn't (KeyError: no such action)."""
    if name not in ACTIONS and name not in ADMIN_ACTIONS:
        importlib.import_module(MODULES[name])
    return ACTIONS.get(name) or ADMIN_ACTIONS[name]


def admin_action(name: str) -> AdminAction[Any]:
    """One of the actions only the admin function runs (KeyError: no such action, or a gate action)."""
    action = action_class(name)
    if not issubclass(action, AdminAction):
        raise KeyError(name)
    return action()


def find(name: str) -> RemediationAction[Any]:
    """One of the gate's remediation actions (release, quarantine), by name."""
    if name not in GATE_ACTIONS:
        known = ", ".join(GATE_ACTIONS)
        raise EventValidationError(what="remediation request", field="action", reason=f"unknown; use one of {known}")
    action = action_class(name)
    assert issubclass(action, RemediationAction)
    return action()


def load_all() -> dict[str, type[RemediationAction[Any]] | type[AdminAction[Any]]]:
    """Every action, each module imported."""
    return {name: action_class(name) for name in MODULES}


def permissions_of(*names: str) -> frozenset[str]:
    """The IAM actions the named remediation actions (gate or admin) need, together."""
    return frozenset().union(*(action_class(name).permissions for name in names))
