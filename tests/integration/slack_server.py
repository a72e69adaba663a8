"""A real Slack-webhook stand-in on loopback whose answers a test scripts (status, body, Retry-After)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: str = "ok"
    retry_after: int | None = None


@dataclass
class ScriptedSlack:
    answers: list[Answer] = field(default_factory=list)  # consumed in order; afterwards 200 ok
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    url: str = ""

    @property
    def delivered(self) -> list[dict[str, Any]]:
        return [body for _, body in self.received]


@contextmanager
def scripted_slack(*answers: Answer) -> Iterator[ScriptedSlack]:
    state = ScriptedSlack(list(answers))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            with lock:
                answer = state.answers.pop(0) if state.answers else Answer()
                state.received.append((time.monotonic(), body))
            self.send_response(answer.status)
            if answer.retry_after is not None:
                self.send_header("Retry-After", str(answer.retry_after))
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(answer.body.encode())

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/secret-token-XYZ"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
