"""ASGI middleware: request size limit, and metrics plus one access-log line per request."""

from __future__ import annotations

import functools
import json
import logging
import time

import structlog
from asgi_correlation_id import correlation_id
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_service.core.errors import error_body
from agent_service.core.metrics import HTTP_DURATION, HTTP_REQUESTS

log = structlog.get_logger("agent_service.access")
_access_logged = logging.getLogger("agent_service.access")


async def _reject(send: Send, limit: int) -> None:
    body = json.dumps(error_body(413, f"request body exceeds {limit} bytes")).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """413 for bodies over the limit, by Content-Length or, for chunked uploads, as they stream."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _reject(send, self.max_bytes)
                return
        if any(name == b"content-length" for name, _ in scope["headers"]):
            # The server enforces Content-Length framing, and it is within the limit.
            await self.app(scope, receive, send)
            return
        # A chunked body: buffer it (at most the limit) so an oversized one is refused before
        # the application reads any of it.
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await _reject(send, self.max_bytes)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


@functools.cache
def _series(method: str, template: str, status: int) -> tuple[Counter, Histogram]:
    # `labels()` validates and locks on every call; the label sets are few (route templates,
    # not paths), so each request's series are looked up once and kept.
    return (HTTP_REQUESTS.labels(method, template, str(status)),
            HTTP_DURATION.labels(method, template))


class MetricsAndAccessLog:
    """Counts and times every request by route template (never the raw path).

    A request is recorded when its response starts, before the body is sent, so a client that
    has its answer can never scrape /metrics ahead of its own request (and streamed responses
    count by time to first byte, not by how long the client stayed).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        recorded = False

        def record(status: int) -> None:
            nonlocal recorded
            recorded = True
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            method = scope["method"]
            counter, histogram = _series(method, template, status)
            counter.inc()
            histogram.observe(elapsed)
            # Checked first: below INFO the call would still build and drop an event per request.
            if _access_logged.isEnabledFor(logging.INFO) and \
                    template not in ("/health", "/ready", "/metrics"):
                log.info("request", method=method, route=template, status=status,
                         duration_ms=round(elapsed * 1000, 2),
                         request_id=correlation_id.get())

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start" and not recorded:
                record(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            if not recorded:
                record(500)
