"""Start `ecr-warden local` as a user would (a subprocess on a free loopback port) and talk to it over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    endpoint_url: str
    lines: list[str] = field(default_factory=list)

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name="us-east-1")

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; stack output:\n{self.output()[-4000:]}")

    def state(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(self.endpoint_url + "/_ecr_warden/state", timeout=10) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env_extra={"AWS_ENDPOINT_URL": self.endpoint_url}, check=check)

    def aws(self, *args: str) -> Any:
        completed = subprocess.run(
            [str(Path(sys.executable).parent / "aws"), "--endpoint-url", self.endpoint_url, "--output", "json", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=os.environ.copy(),
        )
        assert completed.returncode == 0, completed.stderr
        return json.loads(completed.stdout) if completed.stdout.strip() else None


def run_cli(
    *args: str, env_extra: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, "-m", "ecr_warden_tools.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
        env={**os.environ, **(env_extra or {})},
    )
    if check:
        assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


def start_stack(*extra: str) -> RunningStack:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "ecr_warden_tools.cli", "local", "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    stack = RunningStack(process, f"http://127.0.0.1:{port}")
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            stack.lines.append(line.rstrip("\n"))
            if "ready" in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(60):
        process.kill()
        raise AssertionError("local stack did not become ready:\n" + stack.output())
    return stack


def stop_stack(stack: RunningStack) -> int:
    stack.process.send_signal(signal.SIGINT)
    try:
        return stack.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        stack.process.kill()
        raise


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    running = start_stack()
    yield running
    assert stop_stack(running) == 0
