"""`ecr-warden run status`: the exit code and the message say what the run did, from the function's answers."""

from __future__ import annotations

from typing import Any

import pytest

from ecr_warden_tools import runs_cli
from ecr_warden_tools.cli import main


def status(state: str, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "run_id": "sweep-1", "job": "sweep", "by": "lead", "reason": "weekly", "started_at": "2026-11-28T05:00:00Z",
        "updated_at": "2026-11-28T05:01:00Z", "state": state,
        "registries": {"total": 4, "listed": 2, "failed": 2, "pending": 0},
        "batches": {"queued": 2, "done": 2, "pending": 0},
        "repositories": {"listed": 50, "done": 50, "worked_on": 50},
        "counts": {"drift": 3}, "rows": [],
        "failed_registries": {"222222222222#us-east-1": "AccessDenied: not authorized to perform: sts:AssumeRole"},
    }  # fmt: skip
    return {**base, **changes}


class Scripted:
    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers, self.asked = list(answers), 0

    def call(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.asked += 1
        return {"ok": True, "result": self.answers[min(self.asked, len(self.answers)) - 1]}


def run(monkeypatch: pytest.MonkeyPatch, client: Scripted, *extra: str) -> int:
    monkeypatch.setattr("ecr_warden_tools.cli._admin_client", lambda args: client)
    return main(["run", "status", "sweep-1", "--by", "lead", "--region", "us-east-1", *extra])


def test_a_run_that_could_not_read_some_registries_is_not_reported_as_done(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, Scripted(status("done_with_unreachable"))) == runs_cli.EXIT_UNREACHABLE
    printed = capsys.readouterr()
    assert "unreachable: 222222222222#us-east-1: AccessDenied" in printed.out
    assert "2 registries could not be read" in printed.err


def test_waiting_stops_when_no_step_is_counted_any_more(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runs_cli, "POLL_SECONDS", 0.0)
    monkeypatch.setattr(runs_cli, "STALLED_SECONDS", 0.05)
    stuck = status("running", batches={"queued": 3, "done": 2, "pending": 1})
    client = Scripted(stuck)
    assert run(monkeypatch, client, "--wait") == runs_cli.EXIT_RUNNING
    assert client.asked > 1
    assert "look in the run dead-letter queue" in capsys.readouterr().err


def test_an_aborted_start_is_an_error_and_done_is_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    aborted = status("aborted", aborted="SendMessageBatch: 3 run step(s) not queued")
    assert run(monkeypatch, Scripted(aborted)) == 2
    assert "aborted while starting" in capsys.readouterr().err
    done = status("done", registries={"total": 4, "listed": 4, "failed": 0, "pending": 0}, failed_registries={})
    assert run(monkeypatch, Scripted(done)) == 0
