"""A Slack webhook stand-in on loopback for the fault suites: one server, a path per route, scripted failures.

A message counts as posted only when it is answered 200, as Slack posts it. The failures: an HTTP status (500,
429 with Retry-After, 404), or a stall, where the answer never comes in time (the client's read timeout; the
message was not posted, as when Slack's edge gives up before the channel has it).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "secret-token-FAULTS-0042"


@dataclass
class Failure:
    status: int = 500  # 0: stall
    body: str = "internal_error"
    retry_after: int | None = None


STALL = Failure(0, "")


@dataclass
class SlackStub:
    base_url: str = ""
    stall_seconds: float = 1.0
    failures: dict[str, list[Failure]] = field(default_factory=dict)  # route path -> next answers
    posted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (route, body) answered 200
    requests: list[str] = field(default_factory=list)  # every request's route
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, route: str) -> str:
        return f"{self.base_url}/services/T000/B{route}/{TOKEN}"

    def fail(self, route: str, *answers: Failure) -> None:
        with self.lock:
            self.failures.setdefault(route, []).extend(answers)

    def posted_to(self, route: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for r, body in self.posted if r == route]

    def reset(self) -> None:
        with self.lock:
            self.failures.clear()
            self.posted.clear()
            self.requests.clear()


@contextmanager
def slack_stub(stall_seconds: float = 1.0) -> Iterator[SlackStub]:
    state = SlackStub(stall_seconds=stall_seconds)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            route = self.path.split("/")[3][1:]  # /services/T000/B<route>/<token>
            with state.lock:
                state.requests.append(route)
                queued = state.failures.get(route)
                answer = queued.pop(0) if queued else None
                if answer is None:
                    state.posted.append((route, body))
            if answer is not None and answer.status == 0:
                time.sleep(state.stall_seconds)
                return  # no answer: the client has timed out
            status = answer.status if answer else 200
            self.send_response(status)
            if answer is not None and answer.retry_after is not None:
                self.send_header("Retry-After", str(answer.retry_after))
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write((answer.body if answer else "ok").encode())

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
