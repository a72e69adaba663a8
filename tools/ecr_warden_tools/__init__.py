"""ecr-warden's tools for people: the `ecr-warden` command, the embedded local stack and the demo.

Never shipped to Lambda: the layer holds only `ecr_warden`, and this package depends on it, never the reverse.
"""
