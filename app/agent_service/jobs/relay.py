"""The relay: hands saved runs to the queue (a transactional outbox).

The API only commits a run's row. If it also enqueued the job, a Redis failure after the commit
would leave a saved run whose client was told it failed. The client would submit it again, and
both copies would run. And the enqueue cost the API as much CPU as the rest of a submission.

Every worker runs a relay instead. It wakes on the notification that the API's insert sends
on commit. It then claims the oldest saved runs not yet queued (`FOR UPDATE SKIP LOCKED`, so
relays of several workers never claim the same run) and enqueues them in one script call. It
marks them queued in the same transaction. If Redis fails, the transaction rolls back and the
runs wait for the next pass. If a worker dies between the enqueue and the commit, the next pass
enqueues them again; that is a no-op for a job still queued, and a run's result is written
exactly once anyway (jobs/runs.py). A missed notification costs at most one poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg

from agent_service.core.config import Settings
from agent_service.core.outage import Outage
from agent_service.db.hot_path import RUNS_SAVED_CHANNEL
from agent_service.jobs.queue import ResilientRedisQueue, backoff_seconds, run_job

BATCH = 500
POLL_SECONDS = 1.0
# Bounds each attempt to re-open the LISTEN connection, so an unreachable database (packets
# dropped rather than refused) does not stall the relay for asyncpg's default of a minute.
LISTEN_CONNECT_SECONDS = 10.0


async def relay_saved_runs(pool: asyncpg.Pool, queue: ResilientRedisQueue, settings: Settings,
                           limit: int = BATCH) -> int:
    """Enqueues up to `limit` saved runs, oldest first; returns how many."""
    async with pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch(
            "SELECT id, request_id, trace_context FROM research_runs "
            "WHERE enqueued_at IS NULL AND status = 'queued' "
            "ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED", limit)
        if not rows:
            return 0
        await queue.enqueue_many([run_job(settings, str(row["id"]), row["request_id"],
                                          trace_context=row["trace_context"])
                                  for row in rows])
        await connection.execute("UPDATE research_runs SET enqueued_at = now() "
                                 "WHERE id = ANY($1)", [row["id"] for row in rows])
    return len(rows)


class Relay:
    """`run()` relays until cancelled: at once when notified, else every `poll_seconds`."""

    def __init__(self, pool: asyncpg.Pool, queue: ResilientRedisQueue, settings: Settings,
                 poll_seconds: float = POLL_SECONDS) -> None:
        self.pool = pool
        self.queue = queue
        self.settings = settings
        self.poll_seconds = poll_seconds
        self._saved = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._passes = Outage(__name__, "relay failed; retrying with backoff", "relay recovered")
        self.listens = Outage(__name__, "relay cannot listen; polling until it can",
                              "relay listening again")
        """Failed attempts to open the LISTEN connection since it last succeeded."""
        self.listening = asyncio.Event()
        """Set while notifications reach this relay (cleared while it falls back to polling)."""

    async def run(self) -> None:
        try:
            while True:
                await self._listen()
                # Cleared before the pass: a run saved during it wakes the next one.
                self._saved.clear()
                try:
                    moved = await relay_saved_runs(self.pool, self.queue, self.settings)
                except Exception as error:  # noqa: BLE001 - Postgres or Redis away; keep going
                    await asyncio.sleep(backoff_seconds(self._passes.failed(error)))
                    continue
                self._passes.succeeded()
                if moved < BATCH:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._saved.wait(), self.poll_seconds)
        finally:
            await self._unlisten()

    async def _listen(self) -> None:
        """A connection of its own for LISTEN; re-opened if it was lost (polling meanwhile)."""
        if self._listener is not None and not self._listener.is_closed():
            return
        self.listening.clear()
        try:
            self._listener = await asyncpg.connect(
                self.settings.database_url.get_secret_value(), timeout=LISTEN_CONNECT_SECONDS)
            await self._listener.add_listener(RUNS_SAVED_CHANNEL, self._notified)
        except (OSError, TimeoutError, asyncpg.PostgresError,
                asyncpg.InterfaceError) as error:
            self._listener = None
            self.listens.failed(error)
            return
        self.listens.succeeded()
        self.listening.set()

    def _notified(self, *_: Any) -> None:
        self._saved.set()

    async def _unlisten(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
