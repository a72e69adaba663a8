"""A Slack incoming-webhook stand-in on loopback: stores each message and prints it as a person reads it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def render(message: dict[str, Any]) -> str:
    """Plain rendering of a Block Kit message (header, sections, fields, context) for a terminal."""
    lines: list[str] = []
    for block in message.get("blocks") or []:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"== {block['text']['text']} ==")
        elif kind == "section":
            if block.get("text"):
                lines.append(block["text"]["text"])
            lines.extend(f"  {field['text'].replace(chr(10), ' ')}" for field in block.get("fields") or [])
        elif kind == "context":
            lines.append("  " + " | ".join(e.get("text", "") for e in block.get("elements") or []))
        elif kind == "actions":
            lines.extend(f"  [{e['text']['text']}] {e.get('url', '')}" for e in block.get("elements") or [])
        elif kind == "divider":
            lines.append("-" * 40)
    if not lines:
        lines.append(str(message.get("text", "")))
    return "\n".join(lines)


class SlackCatcher:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, echo: Callable[[str], None] | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    message = json.loads(raw)
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    self.wfile.write(b"invalid_payload")
                    return
                with catcher._lock:
                    catcher.messages.append({"path": self.path, "body": message})
                if echo:
                    echo("slack message received:\n" + render(message))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="slack-catcher")

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/services/T0LOCAL/B0LOCAL/localcatcher"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
