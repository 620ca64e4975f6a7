"""Outages of Postgres and Redis: recognising one, waiting one out, and logging it once.

An outage (a refused or dropped connection, a server starting up, shutting down or failing over,
too many clients, a full connection pool) says nothing about the request or run that met it:
the API answers 503 with Retry-After (core/errors.py), and a worker waits for the service to
come back instead of spending the run's attempts (jobs/worker.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import redis.exceptions
import sqlalchemy.exc
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

T = TypeVar("T")

# asyncpg's classes for SQLSTATE 08 (connection exception), 53 (insufficient resources: too
# many clients) and 57P (operator intervention: shutdown, crash recovery, starting up); an
# InterfaceError is a connection closed under a query. SQLAlchemy wraps each in a DBAPIError
# raised `from` it, and reports its own full pool as a TimeoutError.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError, asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.OperatorInterventionError, asyncpg.InterfaceError,
    sqlalchemy.exc.DisconnectionError, sqlalchemy.exc.TimeoutError,
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
    ConnectionError, TimeoutError, OSError)
# The longest a retry waits between two tries, so work resumes within seconds of a recovery.
MAX_WAIT_SECONDS = 2.0


def is_outage(error: BaseException) -> bool:
    """Whether `error`, or an error it was raised from, is a backing service being away."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OUTAGE_ERRORS):
            return True
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


class Outage:
    """Consecutive failures of one recurring attempt (a dequeue, a relay pass, a LISTEN).

    Loops that retry every few seconds would otherwise write a line per attempt and bury the one
    that says when the outage began. The count in a row also sets the retry's backoff.
    """

    def __init__(self, logger: str, began: str, ended: str) -> None:
        self._log = structlog.get_logger(logger)
        self._began, self._ended = began, ended
        self.failures = 0

    def failed(self, error: BaseException) -> int:
        """Counts a failure, with a warning for the first; returns the failures in a row."""
        self.failures += 1
        if self.failures == 1:
            self._log.warning(self._began, error=f"{type(error).__name__}: {error}")
        return self.failures

    def succeeded(self) -> None:
        if self.failures:
            self._log.info(self._ended, failed_attempts=self.failures)
            self.failures = 0


async def outlast(call: Callable[[], Awaitable[T]], seconds: float, what: str) -> T:
    """`call()`, tried again through an outage for up to `seconds` (then its error is raised);
    any other error is raised at once."""
    outage = Outage(__name__, f"{what}: backing service unavailable; waiting",
                    f"{what}: backing service back")

    def note(state: RetryCallState) -> None:
        if state.outcome is not None and (error := state.outcome.exception()) is not None:
            outage.failed(error)

    retrying = AsyncRetrying(
        retry=retry_if_exception(is_outage), stop=stop_after_delay(seconds),
        wait=wait_exponential_jitter(multiplier=0.1, max=MAX_WAIT_SECONDS), reraise=True,
        before_sleep=note)
    async def attempt() -> T:
        # A coroutine function, so tenacity awaits each try (it would return a lambda's
        # coroutine unawaited).
        return await call()

    result: T = await retrying(attempt)
    outage.succeeded()
    return result
