"""The id of the request being served, for logs, error bodies and the jobs it queues."""

from __future__ import annotations

import random
import re
from contextvars import ContextVar

from structlog.types import EventDict, WrappedLogger

current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_ACCEPTED = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def accepted_or_new(given: str | None) -> str:
    """The client's X-Request-ID if it is short and plain, else a new random one.

    Client-chosen ids are echoed into logs, responses and jobs, so anything that could forge a
    log line or a header (newlines, quotes, long strings) is replaced rather than trusted.
    """
    if given and _ACCEPTED.match(given):
        return given
    # An identifier, not a secret: Python's generator is enough, and unlike os.urandom it makes
    # no system call per request.
    return f"{random.getrandbits(128):032x}"


def add_request_id(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """structlog processor: every log line written while serving a request names it."""
    request_id = current_request_id.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event
