"""Remediation actions an admin asks for by name: each a small unit with its input model, the IAM actions it
needs and what it does. Importing the package registers every action."""

from ecr_warden.actions import enforce, exempt, quarantine, release, report, rescan, run, sweep
from ecr_warden.actions.registry import ACTIONS, ADMIN_ACTIONS, AdminAction, RemediationAction, find, permissions_of

__all__ = [
    "ACTIONS",
    "ADMIN_ACTIONS",
    "AdminAction",
    "RemediationAction",
    "enforce",
    "exempt",
    "find",
    "permissions_of",
    "quarantine",
    "release",
    "report",
    "rescan",
    "run",
    "sweep",
]
