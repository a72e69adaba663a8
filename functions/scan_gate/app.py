"""Scan gate: decide by policy on scan results, continuous-scan findings and pushes; quarantine or tag."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ecr_warden.gate.entry import process
from ecr_warden.observability import logger, metrics
from ecr_warden.settings import GateSettings

SETTINGS = GateSettings.from_env()  # a missing variable fails the cold start, naming it


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process(event, SETTINGS)
