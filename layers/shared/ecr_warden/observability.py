"""The one place that owns Logger and Metrics, so every handler logs and counts the same way."""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()

# SDK debug logs print request and response bodies, secrets included (the Slack webhook URL is one). Whatever
# log level a deployment picks for ecr-warden, these loggers stay at WARNING.
for _sdk in ("botocore", "boto3", "urllib3", "slack_sdk"):
    logging.getLogger(_sdk).setLevel(logging.WARNING)

__all__ = ["MetricUnit", "logger", "metrics"]
