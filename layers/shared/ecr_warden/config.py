"""Function settings from environment variables, validated once per container."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    environment: str = "dev"
    mode: Literal["enforce", "audit"] = "enforce"
    region: str = "us-east-1"
    function_name: str = "local"
    audit_table_name: str | None = None
    decision_bus_name: str | None = None
    policy_parameter_name: str | None = None
    dead_letter_queue_url: str | None = None
    topic_arn: str | None = None
    slack_webhook_secret_arn: str | None = None
    notify_state_table_name: str | None = None
    follow_up_queue_url: str | None = None
    slack_dead_letter_queue_url: str | None = None

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls.model_validate(
            {
                "environment": env.get("WARDEN_ENVIRONMENT", "dev"),
                "mode": env.get("WARDEN_MODE", "enforce"),
                "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION", "us-east-1"),
                "function_name": env.get("AWS_LAMBDA_FUNCTION_NAME", "local"),
                "audit_table_name": env.get("AUDIT_TABLE_NAME"),
                "decision_bus_name": env.get("DECISION_BUS_NAME"),
                "policy_parameter_name": env.get("POLICY_PARAMETER_NAME"),
                "dead_letter_queue_url": env.get("DEAD_LETTER_QUEUE_URL"),
                "topic_arn": env.get("DECISIONS_TOPIC_ARN"),
                "slack_webhook_secret_arn": env.get("SLACK_WEBHOOK_SECRET_ARN"),
                "notify_state_table_name": env.get("NOTIFY_STATE_TABLE_NAME"),
                "follow_up_queue_url": env.get("FOLLOW_UP_QUEUE_URL"),
                "slack_dead_letter_queue_url": env.get("SLACK_DEAD_LETTER_QUEUE_URL"),
            }
        )
