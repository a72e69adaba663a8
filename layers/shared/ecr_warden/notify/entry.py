"""From a raw event to notifications: a decision from the bus, or a batch of follow-up flushes from SQS."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ecr_warden.adapters.dead_letter import SqsDeadLetter
from ecr_warden.adapters.follow_up import SqsFollowUps
from ecr_warden.adapters.notify_state import DynamoNotifyState
from ecr_warden.adapters.policy_source import SsmPolicySource
from ecr_warden.adapters.slack import SlackWebhooks
from ecr_warden.adapters.sns import SnsPublisher
from ecr_warden.contracts.decision import DecisionEvent
from ecr_warden.contracts.parsing import validate_model
from ecr_warden.domain.images import Scope
from ecr_warden.errors import PermanentError
from ecr_warden.notify.service import Notifier
from ecr_warden.observability import logger
from ecr_warden.runtime import policy_source, reject
from ecr_warden.settings import NotifierSettings

# Every adapter the notifier is wired with; its IAM is what these declare (tests/unit/test_template.py compares).
ADAPTERS = (DynamoNotifyState, SlackWebhooks, SnsPublisher, SqsFollowUps, SqsDeadLetter, SsmPolicySource)


def build_notifier(settings: NotifierSettings) -> Notifier:
    return Notifier(
        policy=policy_source(settings).get(),
        state=DynamoNotifyState(settings.notify_state_table_name),
        slack=SlackWebhooks(settings.slack_webhook_secret_arn),
        sns=SnsPublisher(settings.topic_arn),
        follow_ups=SqsFollowUps(settings.follow_up_queue_url),
        slack_dead_letter=SqsDeadLetter(settings.slack_dead_letter_queue_url),
        function_name=settings.function_name,
        home=Scope(settings.home_account, settings.region) if settings.home_account else None,
    )


def process(
    raw: Any,
    context: Any,
    settings: NotifierSettings,
    factory: Callable[[NotifierSettings], Notifier] = build_notifier,
) -> dict[str, Any]:
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
        image = body.get("image") or _image_of_legacy_flush(body)
        result = notifier.on_window_closed(image)
        logger.info("follow-up window closed", image=image, result=result)
        return result

    response = process_partial_response(
        event=raw, record_handler=flush, processor=BatchProcessor(event_type=EventType.SQS), context=context
    )
    return dict(response)


def _image_of_legacy_flush(body: dict[str, Any]) -> str:
    """A flush queued by a version before 0.2 names repository and digest; that version kept the image's queued
    updates under "<repository>@<digest>", and they are still there."""
    return f"{body['repository']}@{body['digest']}"
