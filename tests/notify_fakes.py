"""In-memory fakes of the notifier's ports (ecr_warden.notify.service), with the adapters' semantics: a claim is
a conditional add to a set, the follow-up window and queue are one item per image, slots are per webhook. Every
call that would write to AWS or Slack is counted in `writes`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ecr_warden.notify.service import Notifier
from ecr_warden.policy.load import default_policy
from ecr_warden.policy.model import Policy


@dataclass
class FakeNotifyState:
    writes: Counter[str]
    sent: dict[str, set[str]] = field(default_factory=dict)
    windows: dict[str, float] = field(default_factory=dict)
    pending: dict[str, list[str]] = field(default_factory=dict)
    latest: dict[str, str] = field(default_factory=dict)
    scheduled: dict[str, bool] = field(default_factory=dict)

    def claim(self, image: str, notification: str, now: datetime) -> bool:
        self.writes["dynamodb:claim"] += 1
        if notification in self.sent.setdefault(image, set()):
            return False
        self.sent[image].add(notification)
        return True

    def unclaim(self, image: str, notification: str) -> None:
        self.writes["dynamodb:unclaim"] += 1
        self.sent.get(image, set()).discard(notification)

    def restore_pending(self, image: str, summaries: list[str], latest: str) -> None:
        self.writes["dynamodb:restore_pending"] += 1
        self.pending[image] = [*summaries, *self.pending.get(image, [])]
        self.latest.setdefault(image, latest)
        self.scheduled[image] = True

    def open_window(self, image: str, until: datetime) -> None:
        self.writes["dynamodb:open_window"] += 1
        self.windows[image] = until.timestamp()

    def add_pending(self, image: str, summary: str, latest: str, now: datetime) -> tuple[bool, float] | None:
        self.writes["dynamodb:add_pending"] += 1
        if self.windows.get(image, 0.0) <= now.timestamp():
            return None
        was = self.scheduled.get(image, False)
        self.pending.setdefault(image, []).append(summary)
        self.latest[image] = latest
        self.scheduled[image] = True
        return was, self.windows[image]

    def take_pending(self, image: str) -> tuple[list[str], str | None]:
        self.writes["dynamodb:take_pending"] += 1
        self.scheduled[image] = False
        return self.pending.pop(image, []), self.latest.pop(image, None)

    def unschedule(self, image: str) -> None:
        self.writes["dynamodb:unschedule"] += 1
        self.scheduled[image] = False

    def reserve_slot(self, webhook: str, interval: float) -> float:
        self.writes["dynamodb:reserve_slot"] += 1
        return datetime.now(UTC).timestamp()


@dataclass
class FakeSlack:
    writes: Counter[str]
    posted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def url(self, route: str, secret: str | None) -> str:
        return "https://hooks.slack.com/services/T000/B000/fake-token"

    def post(self, route: str, url: str, message: dict[str, Any]) -> None:
        self.writes["slack:post"] += 1
        self.posted.append((route, message))


@dataclass
class FakeSns:
    writes: Counter[str]
    published: list[tuple[str, dict[str, Any], dict[str, dict[str, str]]]] = field(default_factory=list)

    def publish(self, subject: str, document: dict[str, Any], attributes: dict[str, dict[str, str]]) -> None:
        self.writes["sns:publish"] += 1
        self.published.append((subject, document, attributes))


@dataclass
class FakeFollowUps:
    writes: Counter[str]
    messages: list[tuple[dict[str, Any], float]] = field(default_factory=list)

    def schedule(self, image: str, delay_seconds: float) -> None:
        self.writes["sqs:schedule"] += 1
        self.messages.append(({"kind": "flush", "image": image}, delay_seconds))

    def defer(self, slack: dict[str, Any], delay_seconds: float) -> None:
        self.writes["sqs:defer"] += 1
        self.messages.append(({"kind": "slack", **slack}, delay_seconds))


@dataclass
class FakeDeadLetter:
    writes: Counter[str]
    parked: list[tuple[Any, Exception]] = field(default_factory=list)

    def send(self, event: Any, error: Exception, function_name: str) -> None:
        self.writes["sqs:dead_letter"] += 1
        self.parked.append((event, error))


@dataclass
class NotifierFakes:
    writes: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.state = FakeNotifyState(self.writes)
        self.slack = FakeSlack(self.writes)
        self.sns = FakeSns(self.writes)
        self.follow_ups = FakeFollowUps(self.writes)
        self.dead_letter = FakeDeadLetter(self.writes)

    def notifier(self, policy: Policy | None = None) -> Notifier:
        return Notifier(
            policy=policy or default_policy(),
            state=self.state,
            slack=self.slack,
            sns=self.sns,
            follow_ups=self.follow_ups,
            slack_dead_letter=self.dead_letter,
            sleep=lambda _seconds: None,
        )
