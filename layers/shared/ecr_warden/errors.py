"""Typed domain errors. Adapters translate SDK failures into these once; handlers decide retry vs. DLQ."""

from __future__ import annotations


class WardenError(Exception):
    """Base class for every error ecr-warden raises on purpose."""


class PermanentError(WardenError):
    """Retrying cannot help (bad input, bad configuration): the event goes to the DLQ, not back to Lambda."""


class EventValidationError(PermanentError):
    def __init__(self, what: str, field: str, reason: str, error_count: int = 1) -> None:
        self.what, self.field, self.reason, self.error_count = what, field, reason, error_count
        more = f" (+{error_count - 1} more)" if error_count > 1 else ""
        super().__init__(f"invalid {what}: field '{_short(field)}': {_short(reason)}{more}")


class UnsupportedEventError(PermanentError):
    def __init__(self, source: str, detail_type: str) -> None:
        self.source, self.detail_type = source, detail_type
        # bounded: the event's own text, echoed whole, could be 256 KB in a log line and the dead-letter message
        super().__init__(f"unsupported event: source={_short(source)!r} detail-type={_short(detail_type)!r}")


class ForeignEventError(WardenError):
    """A well-formed event about something ecr-warden does not guard (an EC2 instance's scan, a Lambda
    function's finding): ignored and counted, never parked in a dead-letter queue, never alarmed on."""

    def __init__(self, detail_type: str, resource: str) -> None:
        self.detail_type, self.resource = detail_type, resource
        super().__init__(f"{detail_type} about {_short(resource)}: not an ECR image")


def _short(text: str, limit: int = 200) -> str:
    """Event text quoted in an error message, cut to `limit` characters."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class TransientError(WardenError):
    """AWS was slow, throttled or briefly unavailable: not the event's fault and not a bad configuration. It
    propagates, so Lambda retries the event (and only after its retries the on-failure destination gets it)."""


class ConfigurationError(PermanentError):
    """Deployment or policy configuration is wrong; an operator must fix it."""


class ImageNotFoundError(WardenError):
    """The repository or image named by an event no longer exists (treated as 'already gone')."""

    def __init__(self, repository: str, reference: str) -> None:
        self.repository, self.reference = repository, reference
        super().__init__(f"image {repository}@{reference} not found")


class TagConflictError(WardenError):
    """The tag exists on another image in an IMMUTABLE repository."""


class ConcurrentUpdateError(WardenError):
    """Someone else wrote the record since it was read: read again and re-decide."""


class SlackConfigurationError(ConfigurationError):
    def __init__(self, route: str, reason: str) -> None:
        self.route, self.reason = route, reason
        super().__init__(f"Slack route {route!r} is misconfigured: {reason}")


class SlackPayloadError(PermanentError):
    pass


class SlackDeliveryError(WardenError):
    """Slack stayed unavailable through every retry."""
