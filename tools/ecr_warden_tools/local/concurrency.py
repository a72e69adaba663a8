"""What an SQS event source ran at once: each invocation's start and end, and the peaks, overall, per message
group and per account (a group id's part before the first '#', e.g. "<account>#<region>")."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BatchRun:
    started: float  # time.monotonic()
    ended: float
    groups: tuple[str, ...]  # the MessageGroupIds of its records (FIFO queues), in order, repeated as they come


def account_of_group(group: str) -> str:
    return group.split("#", 1)[0]


class ConcurrencyLog:
    """Invocations of one event source; peaks are counted as invocations start and end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._groups: Counter[str] = Counter()
        self._accounts: Counter[str] = Counter()
        self._peak = 0
        self._peak_groups: dict[str, int] = {}
        self._peak_accounts: dict[str, int] = {}
        self.runs: list[BatchRun] = []

    def start(self, groups: list[str]) -> float:
        """An invocation starts with these records' groups: count it once per group and once per account."""
        with self._lock:
            self._running += 1
            self._peak = max(self._peak, self._running)
            for group in set(groups):
                self._groups[group] += 1
                self._peak_groups[group] = max(self._peak_groups.get(group, 0), self._groups[group])
            for account in {account_of_group(g) for g in groups}:
                self._accounts[account] += 1
                self._peak_accounts[account] = max(self._peak_accounts.get(account, 0), self._accounts[account])
        return time.monotonic()

    def end(self, started: float, groups: list[str]) -> None:
        with self._lock:
            self._running -= 1
            for group in set(groups):
                self._groups[group] -= 1
            for account in {account_of_group(g) for g in groups}:
                self._accounts[account] -= 1
            self.runs.append(BatchRun(started, time.monotonic(), tuple(groups)))

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "peak": self._peak,
                "peak_per_group": dict(self._peak_groups),
                "peak_per_account": dict(self._peak_accounts),
            }
