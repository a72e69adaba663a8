"""The notifier's use cases: a decision arrives, a follow-up window closes, a parked Slack message is redriven.

Noise control: one message per change of decision (duplicates are claimed away). A new decision goes out at
once and opens a window; `updated` decisions inside the window are queued and sent as one follow-up when it
closes. Failure isolation: SNS is published once, before Slack; Slack failures after slack_sdk's retries go
to the Slack dead-letter queue; nothing here calls ECR. Exactly once across retries: SNS and each Slack route
are claimed separately before they go out, and only a part that failed is unclaimed, so a retry of the event
sends only what did not go out.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ecr_warden.contracts.decision import Action, DecisionDetail
from ecr_warden.domain.images import Scope
from ecr_warden.domain.severity import severity_rank
from ecr_warden.errors import SlackConfigurationError, SlackDeliveryError, SlackPayloadError
from ecr_warden.notify import message
from ecr_warden.observability import MetricUnit, logger, metrics
from ecr_warden.policy.model import Policy, SlackRoute

IMMEDIATE = frozenset(
    {
        Action.QUARANTINED,
        Action.ARCHIVED,
        Action.TAGGED,
        Action.RETAG_BLOCKED,
        Action.NOW_COMPLIANT,
        Action.RELEASED,
        Action.RELEASE_INCOMPLETE,
        Action.TAG_REUSED,
        Action.SCAN_FAILED,
        Action.WOULD_QUARANTINE,
        Action.WOULD_ARCHIVE,
        Action.WOULD_TAG,
        Action.UNSCANNED,
        Action.FINDINGS_MISSING,
        Action.SETTINGS_ENFORCED,
        Action.SETTINGS_REPORTED,
        Action.WOULD_ENFORCE_SETTINGS,
    }
)
FOLLOW_UP = frozenset({Action.UPDATED})
# Messages about a block or flag itself: gated by a route's min_severity (a block no finding explains, e.g. of an
# unscanned image, passes every route), and identified by the decision's fingerprint. Lifecycle messages
# (released, now compliant, re-tag blocked, scan failed) go to every matching route and count once per announcement.
VERDICT_ACTIONS = frozenset(
    {
        Action.QUARANTINED,
        Action.ARCHIVED,
        Action.TAGGED,
        Action.UPDATED,
        Action.WOULD_QUARANTINE,
        Action.WOULD_ARCHIVE,
        Action.WOULD_TAG,
    }
)
SLACK_INTERVAL_SECONDS = 1.2  # slots per webhook are this far apart
SLACK_MIN_GAP_SECONDS = 1.0  # Slack's limit: at most one message per second per webhook
# A send starts at its slot, or at most this much later (a slow call, an overslept sleep, a late queue delivery);
# later than that, it takes a new slot. So two sends to one webhook always start at least 1.1 s apart: the
# margin over Slack's 1 s absorbs the jitter between starting a request and Slack receiving it.
SLOT_TOLERANCE_SECONDS = (SLACK_INTERVAL_SECONDS - SLACK_MIN_GAP_SECONDS) / 2
MAX_SLOT_ATTEMPTS = 3  # late this often in one invocation, the message waits for its next slot on the queue
MAX_WAIT_SECONDS = 20.0  # a later slot is not slept for inside an invocation: the message is deferred via SQS

_reported_routes: set[str] = set()  # a misconfigured route is reported once per container, not per message


class NotifyState(Protocol):
    def claim(self, image: str, notification: str, now: datetime) -> bool: ...
    def unclaim(self, image: str, notification: str) -> None: ...
    def restore_pending(self, image: str, summaries: list[str], latest: str) -> None: ...
    def open_window(self, image: str, until: datetime) -> None: ...
    def add_pending(self, image: str, summary: str, latest: str, now: datetime) -> tuple[bool, float] | None: ...
    def take_pending(self, image: str) -> tuple[list[str], str | None]: ...
    def unschedule(self, image: str) -> None: ...
    def reserve_slot(self, webhook: str, interval: float) -> float:
        """The time (epoch seconds) a send to the webhook may start; the next slot is `interval` later."""
        ...


class SlackSender(Protocol):
    def url(self, route: str, secret: str | None) -> str: ...
    def post(self, route: str, url: str, message: dict[str, Any]) -> None: ...


class SnsSender(Protocol):
    def publish(self, subject: str, document: dict[str, Any], attributes: dict[str, dict[str, str]]) -> None: ...


class FollowUpScheduler(Protocol):
    def schedule(self, image: str, delay_seconds: float) -> None: ...
    def defer(self, slack: dict[str, Any], delay_seconds: float) -> None: ...


class DeadLetter(Protocol):
    def send(self, event: Any, error: Exception, function_name: str) -> None: ...


def image_key(detail: DecisionDetail) -> str:
    """An image across accounts and regions: the same repository name elsewhere is another image."""
    return f"{detail.account}#{detail.region}#{detail.repository}@{detail.digest}"


def notification_key(detail: DecisionDetail) -> str:
    """What makes a message new. A block is identified by its decision fingerprint (the gate re-announcing the
    same decision sends nothing); lifecycle events (release, compliance, re-tag, scan failure) happen again
    with the same findings, so each announcement counts (EventBridge duplicates share its decision_id)."""
    if detail.action in VERDICT_ACTIONS and detail.fingerprint:
        return f"{detail.action.value}|{detail.fingerprint}"
    return f"{detail.action.value}|{detail.decision_id}"


@dataclass
class Notifier:
    policy: Policy
    state: NotifyState
    slack: SlackSender
    sns: SnsSender
    follow_ups: FollowUpScheduler
    slack_dead_letter: DeadLetter
    function_name: str = "notifier"
    home: Scope | None = None  # the deployment's account and region: where admin commands are sent
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep

    def on_decision(self, detail: DecisionDetail) -> str:
        if detail.action not in IMMEDIATE | FOLLOW_UP:
            return f"no message for {detail.action.value}"
        image = image_key(detail)
        claim = notification_key(detail)
        if not self.state.claim(image, claim, self.now()):
            return "duplicate decision: already notified"
        try:
            return self._notify(image, claim, detail)
        except Exception:
            self.state.unclaim(image, claim)  # let the retry of this event send what did not go out
            raise

    def _notify(self, image: str, claim: str, detail: DecisionDetail) -> str:
        window = timedelta(seconds=self.policy.notifications.follow_up_window_seconds)
        if detail.action in FOLLOW_UP:
            summary = json.dumps(
                {"time": detail.time.isoformat(), "action": detail.action.value, "reasons": detail.reasons[:3]}
            )
            queued = self.state.add_pending(image, summary, detail.model_dump_json(exclude_none=True), self.now())
            if queued is not None:
                already_scheduled, window_until = queued
                if not already_scheduled:
                    try:
                        self.follow_ups.schedule(image, window_until - self.now().timestamp())
                    except Exception:  # else the retry finds the flush "scheduled", and the update is never sent
                        self.state.unschedule(image)
                        raise
                metrics.add_metric(name="FollowUpsAggregated", unit=MetricUnit.Count, value=1)
                return "queued for the follow-up"
        self.state.open_window(image, self.now() + window)
        self._deliver(image, claim, detail, [])
        return "notified"

    def on_window_closed(self, image: str) -> str:
        summaries, latest = self.state.take_pending(image)
        summaries = list(dict.fromkeys(summaries))  # a retried update was queued again: it is listed once
        if not summaries or latest is None:
            return "nothing pending"
        detail = DecisionDetail.model_validate_json(latest)
        updates = [self._summary_detail(detail, json.loads(s)) for s in summaries]
        # the flush's retry takes these same summaries back (see restore_pending): the same claim
        claim = "follow_up|" + hashlib.sha256(json.dumps([latest, *summaries]).encode()).hexdigest()[:32]
        try:
            self._deliver(image, claim, detail, updates)
        except Exception:
            self.state.restore_pending(image, summaries, latest)  # the flush message is retried
            raise
        return f"follow-up with {len(updates)} update(s)"

    @staticmethod
    def _summary_detail(latest: DecisionDetail, summary: dict[str, Any]) -> DecisionDetail:
        return latest.model_copy(
            update={
                "time": datetime.fromisoformat(summary["time"]),
                "action": Action(summary["action"]),
                "reasons": summary["reasons"],
            }
        )

    def routes_for(self, detail: DecisionDetail) -> list[SlackRoute]:
        highest = severity_rank(message.highest_severity(detail))
        return [
            route
            for route in self.policy.notifications.routes
            if route.matches(detail.repository, detail.account, detail.region)
            and (
                route.min_severity is None
                or detail.action not in VERDICT_ACTIONS
                or message.unrated(detail)  # a block of unknown severity is never below a route's threshold
                or highest >= severity_rank(route.min_severity)
            )
        ]

    def _deliver(self, image: str, claim: str, detail: DecisionDetail, updates: list[DecisionDetail]) -> None:
        # SNS first and once: a Slack outage must not repeat or block it.
        self._once(image, f"{claim}#sns", lambda: self._publish(detail, updates))
        payload = message.slack_message(detail, updates, self.home)
        for route in self.routes_for(detail):
            send = functools.partial(self.send_to_slack, route, payload, detail.decision_id)
            self._once(image, f"{claim}#slack:{route.name}", send)

    def _once(self, image: str, part: str, send: Callable[[], object]) -> None:
        """Send one part of a notification unless it went out before: claimed first, unclaimed if it fails."""
        if not self.state.claim(image, part, self.now()):
            return
        try:
            send()
        except Exception:
            self.state.unclaim(image, part)
            raise

    def _publish(self, detail: DecisionDetail, updates: list[DecisionDetail]) -> None:
        self.sns.publish(
            message.sns_subject(detail, len(updates)),
            message.sns_document(detail, updates, self.home),
            message.sns_attributes(detail),
        )
        metrics.add_metric(name="SnsMessagesPublished", unit=MetricUnit.Count, value=1)

    def send_to_slack(
        self, route: SlackRoute, payload: dict[str, Any], decision_id: str, not_before: float | None = None
    ) -> bool:
        """Send at this webhook's next free slot (or at `not_before`, a slot reserved earlier). A slot further away
        than MAX_WAIT_SECONDS is kept, and the message waits for it on the SQS queue rather than in a sleeping
        invocation."""
        try:
            url = self.slack.url(route.name, route.webhook_secret)
            if not self._wait_for_slot(route, payload, decision_id, not_before):
                return True  # deferred to the queue
            self.slack.post(route.name, url, payload)
        except SlackConfigurationError as error:
            if route.name not in _reported_routes:
                _reported_routes.add(route.name)
                logger.error("slack route misconfigured", route=route.name, reason=error.reason)
            metrics.add_metric(name="SlackConfigurationErrors", unit=MetricUnit.Count, value=1)
            self._park(route, payload, decision_id, error)
            return False
        except (SlackDeliveryError, SlackPayloadError) as error:
            logger.error(
                "slack delivery failed, parked in the dead-letter queue",
                route=route.name,
                error=str(error),
                decision_id=decision_id,
            )
            metrics.add_metric(name="SlackDeliveryFailures", unit=MetricUnit.Count, value=1)
            self._park(route, payload, decision_id, error)
            return False
        metrics.add_metric(name="SlackMessagesSent", unit=MetricUnit.Count, value=1)
        return True

    def _wait_for_slot(
        self, route: SlackRoute, payload: dict[str, Any], decision_id: str, not_before: float | None
    ) -> bool:
        """Sleep until the send may start; False if the message was deferred to the queue instead. The wait is
        measured against the clock after the slot is reserved, and a send later than SLOT_TOLERANCE_SECONDS
        after its slot takes a new one, so sends (not reservations) are at least SLACK_MIN_GAP_SECONDS apart."""
        webhook = route.webhook_secret or "default"
        slot = not_before if not_before is not None else self.state.reserve_slot(webhook, SLACK_INTERVAL_SECONDS)
        for _ in range(MAX_SLOT_ATTEMPTS):
            wait = slot - time.time()
            if wait > MAX_WAIT_SECONDS:
                break
            self.sleep(max(0.0, wait))
            if time.time() - slot <= SLOT_TOLERANCE_SECONDS:
                return True
            slot = self.state.reserve_slot(webhook, SLACK_INTERVAL_SECONDS)  # too late for this one
        self.follow_ups.defer(
            {"route": route.model_dump(), "message": payload, "decision_id": decision_id, "not_before": slot},
            slot - time.time(),
        )
        metrics.add_metric(name="SlackMessagesDeferred", unit=MetricUnit.Count, value=1)
        return False

    def send_deferred(self, body: dict[str, Any]) -> bool:
        """A Slack message that waited on the queue for the slot it reserved."""
        return self.send_to_slack(
            SlackRoute.model_validate(body["route"]),
            body["message"],
            body["decision_id"],
            not_before=float(body["not_before"]),
        )

    def _park(self, route: SlackRoute, payload: dict[str, Any], decision_id: str, error: Exception) -> None:
        self.slack_dead_letter.send(
            {"route": route.model_dump(), "decision_id": decision_id, "message": payload}, error, self.function_name
        )

    def redrive(self, parked: dict[str, Any]) -> bool:
        """Send a message from the Slack dead-letter queue again (after the webhook is fixed)."""
        event = parked["event"]
        return self.send_to_slack(SlackRoute.model_validate(event["route"]), event["message"], event["decision_id"])
