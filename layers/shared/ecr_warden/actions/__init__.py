"""Remediation actions an admin asks for by name: each a small unit in its own module with its input model, the
IAM actions it needs and what it does. A module is imported, and so registers its action, when the action is
first asked for (registry.action_class); `load_all()` imports them all."""

from ecr_warden.actions.registry import (
    ACTIONS,
    ADMIN_ACTIONS,
    GATE_ACTIONS,
    MODULES,
    AdminAction,
    RemediationAction,
    action_class,
    admin_action,
    find,
    load_all,
    permissions_of,
)

__all__ = [
    "ACTIONS",
    "ADMIN_ACTIONS",
    "GATE_ACTIONS",
    "MODULES",
    "AdminAction",
    "RemediationAction",
    "action_class",
    "admin_action",
    "find",
    "load_all",
    "permissions_of",
]
