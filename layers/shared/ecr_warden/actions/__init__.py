"""Remediation actions an admin asks for by name: each a small unit with its input model, the IAM actions it
needs and what it does. Importing the package registers every action."""

from ecr_warden.actions import release
from ecr_warden.actions.registry import ACTIONS, RemediationAction, find, permissions_of

__all__ = ["ACTIONS", "RemediationAction", "find", "permissions_of", "release"]
