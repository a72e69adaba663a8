"""The only code that talks to AWS. Each adapter translates SDK failures into domain errors once."""
