"""From a raw event to notifications: a decision from the bus, or a batch of follow-up flushes from SQS."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ecr_warden.adapters.dead_letter import SqsDeadLetter
from ecr_warden.adapters.follow_up import SqsFollowUps
from ecr_warden.adapters.notify_state import DynamoNotifyState
from ecr_warden.adapters.slack import SlackWebhooks
from ecr_warden.adapters.sns import SnsPublisher
from ecr_warden.config import Settings
from ecr_warden.contracts.decision import DecisionEvent
from ecr_warden.contracts.parsing import validate_model
from ecr_warden.errors import ConfigurationError, PermanentError
from ecr_warden.gate.entry import reject, shared_policy_source
from ecr_warden.notify.service import Notifier
from ecr_warden.observability import logger


def build_notifier(settings: Settings) -> Notifier:
    required = {
        "DECISIONS_TOPIC_ARN": settings.topic_arn,
        "NOTIFY_STATE_TABLE_NAME": settings.notify_state_table_name,
        "FOLLOW_UP_QUEUE_URL": settings.follow_up_queue_url,
        "SLACK_DEAD_LETTER_QUEUE_URL": settings.slack_dead_letter_queue_url,
    }
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise ConfigurationError(f"missing environment: {', '.join(missing)}")
    return Notifier(
        policy=shared_policy_source(settings).get(),
        state=DynamoNotifyState(str(settings.notify_state_table_name)),
        slack=SlackWebhooks(settings.slack_webhook_secret_arn),
        sns=SnsPublisher(str(settings.topic_arn)),
        follow_ups=SqsFollowUps(str(settings.follow_up_queue_url)),
        slack_dead_letter=SqsDeadLetter(str(settings.slack_dead_letter_queue_url)),
        function_name=settings.function_name,
    )


def process(
    raw: Any, context: Any, settings: Settings | None = None, factory: Callable[[Settings], Notifier] = build_notifier
) -> dict[str, Any]:
    settings = settings or Settings.from_env()
    if isinstance(raw, dict) and "Records" in raw:
        return _follow_ups(raw, context, factory(settings))
    try:
        event = validate_model(DecisionEvent, raw, what="decision event")
        notifier = factory(settings)
    except PermanentError as error:
        return reject(raw, error, settings)
    detail = event.detail
    logger.append_keys(repository=detail.repository, digest=detail.digest, decision_id=detail.decision_id)
    result = notifier.on_decision(detail)
    logger.info("decision handled", action=detail.action.value, result=result)
    return {"status": "ok", "result": result}


def _follow_ups(raw: dict[str, Any], context: Any, notifier: Notifier) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    def flush(record: SQSRecord) -> str:
        body = json.loads(record.body)
        if body.get("kind") == "slack":
            return "sent" if notifier.send_deferred(body) else "parked"
        result = notifier.on_window_closed(body["repository"], body["digest"])
        logger.info("follow-up window closed", repository=body["repository"], digest=body["digest"], result=result)
        return result

    response = process_partial_response(
        event=raw, record_handler=flush, processor=BatchProcessor(event_type=EventType.SQS), context=context
    )
    return dict(response)
