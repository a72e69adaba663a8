"""One entry point that turns a raw EventBridge event into its typed model, or one typed error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ecr_warden.contracts.aws_events import EVENT_MODELS, AwsEvent
from ecr_warden.errors import EventValidationError, UnsupportedEventError

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
    if not isinstance(raw, Mapping):
        raise EventValidationError(what="event", field="<root>", reason="event is not a JSON object")
    source, detail_type = raw.get("source"), raw.get("detail-type")
    model = EVENT_MODELS.get((str(source), str(detail_type)))
    if model is None:
        raise UnsupportedEventError(source=str(source), detail_type=str(detail_type))
    event: AwsEvent = validate_model(model, raw, what=str(detail_type))  # type: ignore[assignment]
    return event
