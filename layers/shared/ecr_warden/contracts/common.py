"""Field types shared by the AWS event contracts."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from ecr_warden.domain.severity import SEVERITIES

# AWS adds fields to its events over time; parsing must keep working when it does. defer_build: a model's validator
# is built when it is first used, so a cold start builds only the event types it receives (docs/PERFORMANCE.md).
LENIENT = ConfigDict(extra="ignore", populate_by_name=True, frozen=True, defer_build=True)

Digest = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")]

# Inspector writes timestamps for people: "Dec 3, 2021, 6:02:30 PM"; other services use ISO 8601.
_HUMAN_FORMATS = (
    "%b %d, %Y, %I:%M:%S %p",
    "%b %d, %Y, %I:%M %p",
    "%b %d, %Y %I:%M:%S %p",
    "%B %d, %Y, %I:%M:%S %p",
    "%a %b %d %H:%M:%S.%f %Y",
    "%a %b %d %H:%M:%S %Y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
)
# "Wed Sep 04 16:55:38.411 UTC 2024": the zone may stand anywhere; AWS only ever writes UTC there.
_ZONE_WORD = re.compile(r"\s+(?:UTC|GMT)\b|(?<=\d)Z$")


def parse_aws_timestamp(value: Any) -> Any:
    """Accept ISO 8601, epoch seconds/milliseconds and Inspector's human formats; always return UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000 if value > 10**11 else value, tz=UTC)
        except (OverflowError, OSError, ValueError):  # out of any calendar, or NaN: an invalid datetime
            return value
    if not isinstance(value, str):
        return value
    text = _ZONE_WORD.sub("", value.strip())
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        for fmt in _HUMAN_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            return value  # let pydantic report the field as an invalid datetime
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


AwsTimestamp = Annotated[datetime, BeforeValidator(parse_aws_timestamp)]


class SeverityCounts(BaseModel):
    """Finding counts by severity as AWS sends them: keys may be missing, and missing is not zero."""

    model_config = LENIENT

    critical: int | None = Field(None, alias="CRITICAL", ge=0)
    high: int | None = Field(None, alias="HIGH", ge=0)
    medium: int | None = Field(None, alias="MEDIUM", ge=0)
    low: int | None = Field(None, alias="LOW", ge=0)
    informational: int | None = Field(None, alias="INFORMATIONAL", ge=0)
    untriaged: int | None = Field(None, alias="UNTRIAGED", ge=0)
    undefined: int | None = Field(None, alias="UNDEFINED", ge=0)
    total: int | None = Field(None, alias="TOTAL", ge=0)

    def as_dict(self) -> dict[str, int]:
        """Only the severities the event actually reported."""
        return {name: count for name in SEVERITIES if (count := getattr(self, name.lower())) is not None}


def repository_name_from(value: str) -> str:
    """Repository name from a name or an ECR repository ARN (Inspector2 sends the ARN, at times with a digest)."""
    if not value.startswith("arn:"):
        return value
    parts = value.split(":", 5)
    if len(parts) != 6 or not parts[5].startswith("repository/"):
        raise ValueError(f"not an ECR repository ARN: {value!r}")
    name = parts[5].removeprefix("repository/")
    name = re.sub(r"/sha256:[0-9a-fA-F]+$", "", name)
    if not name:
        raise ValueError(f"ECR repository ARN without a name: {value!r}")
    return name


RepositoryName = Annotated[
    str,
    BeforeValidator(lambda v: repository_name_from(v) if isinstance(v, str) else v),
    StringConstraints(
        min_length=2,
        max_length=256,
        pattern=r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$",
    ),
]
