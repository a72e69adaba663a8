"""Each function's environment as one validated model: what it needs is required, and a missing or invalid
variable fails the cold start with an error naming it (not the first event, three calls later)."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from typing import Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from ecr_warden.errors import ConfigurationError, EventValidationError

SettingsT = TypeVar("SettingsT", bound="FunctionSettings")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")


class FunctionSettings(BaseModel):
    """What every function reads. Fields are named by their environment variable (alias); tests may pass the
    Python names."""

    # defer_build: each function builds only its own settings model, at from_env (docs/PERFORMANCE.md)
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)

    environment: str = Field("dev", alias="WARDEN_ENVIRONMENT")
    mode: Literal["enforce", "audit"] = Field("enforce", alias="WARDEN_MODE")
    region: str = Field("us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION", "region"))
    function_name: str = Field("local", alias="AWS_LAMBDA_FUNCTION_NAME")
    policy_parameter_name: str | None = Field(None, alias="POLICY_PARAMETER_NAME")
    dead_letter_queue_url: str | None = Field(None, alias="DEAD_LETTER_QUEUE_URL")
    # the IAM resource pattern ECR writes are granted on (template parameter GovernedRepositories)
    governed_repositories: str = Field("*", alias="GOVERNED_REPOSITORIES", min_length=1)
    # Organization mode (docs/ORGANIZATION.md): the role assumed in other accounts, and this function's own account
    # (reached with its own credentials). Empty: every account is reached with the function's own credentials.
    member_role_name: str = Field("", alias="MEMBER_ROLE_NAME", pattern=r"^$|^[A-Za-z0-9+=,.@_-]{1,64}$")
    home_account: str = Field("", alias="WARDEN_ACCOUNT_ID", pattern=r"^$|^\d{12}$")

    def governs(self, repository: str) -> bool:
        """IAM's wildcard semantics: `*` matches any characters (also `/`), `?` one character."""
        return fnmatch.fnmatchcase(repository, self.governed_repositories)

    def in_region(self: SettingsT, region: str) -> SettingsT:
        """Organization mode: the same settings acting in `region`, the region of an event forwarded from another
        region. A single-account deployment acts in its own region only, as it always has."""
        if not self.member_role_name or region == self.region:
            return self
        if not _REGION.fullmatch(region):
            raise EventValidationError(what="event", field="region", reason="not an AWS region name")
        return self.model_copy(update={"region": region})

    def member_role_arn(self, account: str, region: str) -> str | None:
        """The role this function acts through in `account`, or None when it uses its own credentials there."""
        if not self.member_role_name or account == self.home_account:
            return None
        partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
        return f"arn:{partition}:iam::{account}:role/{self.member_role_name}"

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


class SettingsGuardSettings(FunctionSettings):
    audit_table_name: str = Field(alias="AUDIT_TABLE_NAME", min_length=1)
    decision_bus_name: str = Field(alias="DECISION_BUS_NAME", min_length=1)
    reconcile_queue_url: str = Field(alias="RECONCILE_QUEUE_URL", min_length=1)
    # The function's own role: CloudTrail events it caused are ignored (loop safety). Comma-separated ARNs.
    own_role_arns: str = Field("", alias="OWN_ROLE_ARNS")

    @property
    def own_roles(self) -> tuple[str, ...]:
        return tuple(arn.strip() for arn in self.own_role_arns.split(",") if arn.strip())


class AdminSettings(FunctionSettings):
    """The admin (remediation) function: the gate's table and bus, and the settings guard's fan-out queue (enforce)."""

    audit_table_name: str = Field(alias="AUDIT_TABLE_NAME", min_length=1)
    decision_bus_name: str = Field(alias="DECISION_BUS_NAME", min_length=1)
    reconcile_queue_url: str = Field(alias="RECONCILE_QUEUE_URL", min_length=1)
    # runs over many registries (ecr_warden.runs): the FIFO run queue, and the regions a run covers by default
    # (comma-separated; empty: the function's own region)
    run_queue_url: str | None = Field(None, alias="RUN_QUEUE_URL")
    run_regions: str = Field("", alias="RUN_REGIONS", pattern=r"^$|^[a-z]{2}(-[a-z]+)+-\d(, *[a-z]{2}(-[a-z]+)+-\d)*$")

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(r.strip() for r in self.run_regions.split(",") if r.strip())
