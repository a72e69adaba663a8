"""Each function's environment as one validated model: what it needs is required, and a missing or invalid
variable fails the cold start with an error naming it (not the first event, three calls later)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from ecr_warden.errors import ConfigurationError

SettingsT = TypeVar("SettingsT", bound="FunctionSettings")


class FunctionSettings(BaseModel):
    """What every function reads. Fields are named by their environment variable (alias); tests may pass the
    Python names."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    environment: str = Field("dev", alias="WARDEN_ENVIRONMENT")
    mode: Literal["enforce", "audit"] = Field("enforce", alias="WARDEN_MODE")
    region: str = Field("us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION", "region"))
    function_name: str = Field("local", alias="AWS_LAMBDA_FUNCTION_NAME")
    policy_parameter_name: str | None = Field(None, alias="POLICY_PARAMETER_NAME")
    dead_letter_queue_url: str | None = Field(None, alias="DEAD_LETTER_QUEUE_URL")

    @classmethod
    def from_env(cls: type[SettingsT], environ: Mapping[str, str] | None = None) -> SettingsT:
        try:
            return cls.model_validate(dict(os.environ if environ is None else environ))
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                name = str(error["loc"][0]) if error["loc"] else "?"
                what = "missing" if error["type"] == "missing" else error["msg"]
                problems.append(f"{name} ({what})")
            raise ConfigurationError(f"{cls.__name__}: environment variable {', '.join(problems)}") from None


class GateSettings(FunctionSettings):
    audit_table_name: str = Field(alias="AUDIT_TABLE_NAME", min_length=1)
    decision_bus_name: str = Field(alias="DECISION_BUS_NAME", min_length=1)
    delayed_checks_queue_url: str = Field(alias="DELAYED_CHECKS_QUEUE_URL", min_length=1)


class NotifierSettings(FunctionSettings):
    topic_arn: str = Field(alias="DECISIONS_TOPIC_ARN", min_length=1)
    notify_state_table_name: str = Field(alias="NOTIFY_STATE_TABLE_NAME", min_length=1)
    follow_up_queue_url: str = Field(alias="FOLLOW_UP_QUEUE_URL", min_length=1)
    slack_dead_letter_queue_url: str = Field(alias="SLACK_DEAD_LETTER_QUEUE_URL", min_length=1)
    slack_webhook_secret_arn: str | None = Field(None, alias="SLACK_WEBHOOK_SECRET_ARN")
