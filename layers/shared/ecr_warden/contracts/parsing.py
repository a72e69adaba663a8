"""One entry point that turns a raw EventBridge event into its typed model, or one typed error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from ecr_warden.errors import EventValidationError, ForeignEventError, UnsupportedEventError

if TYPE_CHECKING:
    from ecr_warden.contracts.aws_events import AwsEvent

ECR_IMAGE_RESOURCE = "AWS_ECR_CONTAINER_IMAGE"

ModelT = TypeVar("ModelT", bound=BaseModel)


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


def validate_model(model: type[ModelT], raw: Any, what: str) -> ModelT:
    """Validate raw input; on failure raise EventValidationError naming the first bad field."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise EventValidationError(
            what=what,
            field=_field_path(first["loc"]),
            reason=first["msg"],
            error_count=exc.error_count(),
        ) from None


def parse_aws_event(raw: Any) -> AwsEvent:
    """Parse any AWS event ecr-warden handles. Unknown (source, detail-type) pairs raise UnsupportedEventError."""
    # Here, not at the top: validate_model's users (the notifier, the policy) never load the AWS event models.
    from ecr_warden.contracts.aws_events import EVENT_MODELS

    if not isinstance(raw, Mapping):
        raise EventValidationError(what="event", field="<root>", reason="event is not a JSON object")
    source, detail_type = raw.get("source"), raw.get("detail-type")
    model = EVENT_MODELS.get((str(source), str(detail_type)))
    if model is None:
        raise UnsupportedEventError(source=str(source), detail_type=str(detail_type))
    _refuse_foreign(str(detail_type), raw.get("detail"))
    event: AwsEvent = validate_model(model, raw, what=str(detail_type))  # type: ignore[assignment]
    return event


def _refuse_foreign(detail_type: str, detail: Any) -> None:
    """Inspector uses one detail-type for every resource it scans. An event that is well-formed for another
    resource type is not bad input: it is not ours (ForeignEventError). A malformed ECR event still fails
    validation."""
    if not isinstance(detail, Mapping):
        return
    if detail_type == "Inspector2 Scan" and "repository-name" not in detail and "image-digest" not in detail:
        resource = detail.get("instance-id") or "a resource other than an ECR image"
        raise ForeignEventError(detail_type, str(resource))
    if detail_type == "Inspector2 Finding":
        resources = detail.get("resources")
        if isinstance(resources, list) and resources and all(isinstance(r, Mapping) for r in resources):
            types = [str(r.get("type")) for r in resources]
            if ECR_IMAGE_RESOURCE not in types:
                raise ForeignEventError(detail_type, ", ".join(types))
