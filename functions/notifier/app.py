"""Notifier: Slack and SNS messages for ecr-warden's decisions, with noise control. Never calls ECR."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ecr_warden.notify.entry import process
from ecr_warden.observability import logger, metrics
from ecr_warden.settings import NotifierSettings

if TYPE_CHECKING:  # a type only: Powertools' typing package stays off the cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

SETTINGS = NotifierSettings.from_env()  # a missing variable fails the cold start, naming it


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process(event, context, SETTINGS)
