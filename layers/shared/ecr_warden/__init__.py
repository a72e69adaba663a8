"""ecr-warden: an event-driven guard for Amazon ECR."""

__version__ = "0.1.0"
