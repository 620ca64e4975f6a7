"""A local HTTP server speaking the OpenAI and Anthropic wire formats, scripted per test.

It stands in for the providers' endpoints (never the internet): each request takes the next
scripted behaviour, or the default answer when the script is empty.
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

PLAN_MARKER = "You plan research"


@dataclass
class Behaviour:
    """What the next request gets."""

    status: int = 200
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    malformed: bool = False
    wait_for: threading.Event | None = None
    prompt_tokens: int = 11
    completion_tokens: int = 7


class FakeLLM:
    def __init__(self) -> None:
        self.script: list[Behaviour] = []
        self.default = Behaviour()
        """What a request gets once the script is used up."""
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def next(self, path: str, body: dict[str, Any]) -> Behaviour:
        with self.lock:
            self.requests.append({"path": path, "body": body})
            return self.script.pop(0) if self.script else self.default

    def count(self, path_suffix: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r["path"].endswith(path_suffix))


def _default_text(body: dict[str, Any]) -> str:
    system = body.get("system") or next(
        (m["content"] for m in body.get("messages", []) if m["role"] == "system"), "")
    if PLAN_MARKER in system:
        return "rolling update\nmaxUnavailable"
    return "Rolling updates replace pods gradually [1]."


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            behaviour = fake.next(self.path, body)
            if behaviour.wait_for is not None:
                behaviour.wait_for.wait(60)
            if behaviour.delay:
                time.sleep(behaviour.delay)
            if behaviour.malformed:
                payload = b"<html>502 upstream garbage"
            elif behaviour.status != 200:
                payload = json.dumps({"error": {"type": "error", "message": "scripted"}}).encode()
            else:
                text = behaviour.text if behaviour.text is not None else _default_text(body)
                payload = json.dumps(self._success(body, text, behaviour)).encode()
            try:
                self.send_response(behaviour.status)
                self.send_header("content-type", "application/json")
                for name, value in behaviour.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def _success(self, body: dict[str, Any], text: str, b: Behaviour) -> dict[str, Any]:
            model = body.get("model", "unknown")
            if self.path.endswith("/messages"):
                return {"id": "msg_test", "type": "message", "role": "assistant", "model": model,
                        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                        "stop_sequence": None,
                        "usage": {"input_tokens": b.prompt_tokens,
                                  "output_tokens": b.completion_tokens}}
            return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0,
                    "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                                 "message": {"role": "assistant",
                                                             "content": text}}],
                    "usage": {"prompt_tokens": b.prompt_tokens,
                              "completion_tokens": b.completion_tokens,
                              "total_tokens": b.prompt_tokens + b.completion_tokens}}

    return Handler


@contextmanager
def fake_llm() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    fake.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.server.daemon_threads = True
    thread = threading.Thread(target=fake.server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
        thread.join(5)
