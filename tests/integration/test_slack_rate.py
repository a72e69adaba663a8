"""Each webhook gets at most one message per second, measured where it counts: when Slack receives them."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from ecr_warden.adapters.notify_state import DynamoNotifyState
from tests.integration.conftest import Env
from tests.integration.slack_server import scripted_slack
from tests.integration.test_notifier import notifier
from tests.unit.test_message import decision


class SlowFirstReservation:
    """The DynamoDB client, with the first send-slot write taking `delay` seconds (a throttled or cold call)."""

    def __init__(self, real: Any, delay: float) -> None:
        self.real, self.delay, self.slowed = real, delay, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def update_item(self, **kwargs: Any) -> Any:
        if not self.slowed and kwargs["Key"]["key"]["S"].startswith("rate#"):
            self.slowed = True
            time.sleep(self.delay)
        return self.real.update_item(**kwargs)


# Sends start at least 1.1 s apart; arrival times at the server also carry the requests' own latency (the first
# send pays slack_sdk's import), so the check allows 0.1 s of jitter. Slack itself tolerates short bursts.
MIN_ARRIVAL_GAP = 0.9


def _gaps(times: list[float]) -> list[float]:
    return [round(b - a, 3) for a, b in itertools.pairwise(times)]


@pytest.mark.parametrize("delay", [0.5, 0.9])
def test_a_slow_slot_reservation_does_not_squeeze_the_next_gap(aws: Env, delay: float) -> None:
    with scripted_slack() as slack:
        n = notifier(aws, slack, sleep=time.sleep)
        assert isinstance(n.state, DynamoNotifyState)
        n.state._client = SlowFirstReservation(aws.clients["dynamodb"], delay)
        for i in range(3):
            n.on_decision(decision(digest=f"sha256:{i:064d}"))
    times = [t for t, _ in slack.received]
    assert len(times) == 3
    assert all(gap >= MIN_ARRIVAL_GAP for gap in _gaps(times)), _gaps(times)


def test_concurrent_senders_are_held_to_one_message_per_second(aws: Env) -> None:
    import threading

    with scripted_slack() as slack:
        senders = [notifier(aws, slack, sleep=time.sleep) for _ in range(3)]
        threads = [
            threading.Thread(target=n.on_decision, args=(decision(digest=f"sha256:{i:064d}"),))
            for i, n in enumerate(senders)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    times = sorted(t for t, _ in slack.received)
    assert len(times) == 3
    assert all(gap >= MIN_ARRIVAL_GAP for gap in _gaps(times)), _gaps(times)
