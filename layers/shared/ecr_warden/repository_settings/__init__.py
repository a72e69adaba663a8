"""The repository-settings guard: desired state from the policy, a pure evaluation of desired against actual, and
small remediation actions that declare their IAM. Only the entry wires adapters in (docs/settings.md)."""
