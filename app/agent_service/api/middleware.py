"""The one ASGI middleware in front of the routes: body size limit, request id, metrics, the
access log, and the last word on an unexpected error.

One layer rather than three (or a library each): every layer wraps `send` and is resumed on
every await of every request, and on the hot routes three of them cost about as much CPU as
the route's own work.
"""

from __future__ import annotations

import functools
import json
import logging
import time

import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_service.core.errors import INTERNAL_ERROR, error_body
from agent_service.core.metrics import HTTP_DURATION, HTTP_REQUESTS
from agent_service.core.request_id import accepted_or_new, current_request_id

log = structlog.get_logger("agent_service.access")
errors = structlog.get_logger("agent_service.errors")
_access_logged = logging.getLogger("agent_service.access")
REQUEST_ID_HEADER = b"x-request-id"
UNLOGGED_ROUTES = frozenset({"/health", "/ready", "/metrics"})


@functools.cache
def _series(method: str, template: str, status: int) -> tuple[Counter, Histogram]:
    # `labels()` validates and locks on every call; the label sets are few (route templates,
    # not paths), so each request's series are looked up once and kept.
    return (HTTP_REQUESTS.labels(method, template, str(status)),
            HTTP_DURATION.labels(method, template))


class Edge:
    """For every HTTP request:

    - a body over `max_bytes` is refused with 413, by Content-Length before the application
      runs, or for a chunked upload as it streams (buffered up to the limit);
    - the request id is the client's `X-Request-ID` when acceptable, else a new one; it is set
      for logs, error bodies and queued jobs, and returned in the response header;
    - the request is counted and timed by route template (never the raw path) when its
      response starts, so a client holding its answer can never scrape /metrics ahead of its
      own request, and streamed responses count by time to first byte;
    - one access-log line is written (INFO), except for probes and scrapes;
    - an exception no handler took is logged once, as JSON with the request id, and answered
      500 in the one error shape with the request id header. It is not passed on: the server
      would log it a second time, and Starlette's outer handler answers without the header.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given, length = None, None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                given = value.decode("latin-1")
            elif name == b"content-length":
                length = value
        request_id = accepted_or_new(given)
        current_request_id.set(request_id)
        header = (REQUEST_ID_HEADER, request_id.encode())
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
            if _access_logged.isEnabledFor(logging.INFO) and template not in UNLOGGED_ROUTES:
                log.info("request", method=method, route=template, status=status,
                         duration_ms=round(elapsed * 1000, 2))

        async def respond(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
                if not recorded:
                    record(message["status"])
            await send(message)

        try:
            if length is not None:
                # The server enforces Content-Length framing, so checking the header suffices.
                if length.isdigit() and int(length) > self.max_bytes:
                    await self._reject(respond)
                    return
                await self.app(scope, receive, respond)
                return
            replay = await self._buffer_chunked(receive)
            if replay is None:
                await self._reject(respond)
                return
            await self.app(scope, replay, respond)
        except Exception:
            if recorded:  # the response has started: too late to answer anything else
                raise
            errors.exception("unhandled error", path=scope["path"])
            await self._send_error(respond, 500, INTERNAL_ERROR)
        finally:
            if not recorded:
                record(500)

    async def _buffer_chunked(self, receive: Receive) -> Receive | None:
        """The body of a request without Content-Length, read up to the limit (None: over it),
        so an oversized upload is refused before the application reads any of it."""
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                return None
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        return replay

    async def _reject(self, send: Send) -> None:
        await self._send_error(send, 413, f"request body exceeds {self.max_bytes} bytes")

    @staticmethod
    async def _send_error(send: Send, status: int, message: str) -> None:
        body = json.dumps(error_body(status, message))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body.encode()})
