"""Domain value types: images, findings, severities and the audit record. Pure data, no I/O; every other part
of the package may import these, and these import nothing of the package but each other."""
