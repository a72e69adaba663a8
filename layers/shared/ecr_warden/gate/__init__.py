"""The scan gate: decide by policy on an image's findings and act on the decision."""
