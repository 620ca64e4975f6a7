"""The relay: hands saved runs to the queue (a transactional outbox).

The API only commits a run's row. If it also enqueued the job, a Redis failure after the commit
would leave a saved run whose client was told it failed. The client would submit it again, and
both copies would run. And the enqueue cost the API as much CPU as the rest of a submission.

Every worker runs a relay instead. It wakes on the notification that the API's insert sends
on commit. It then claims the oldest saved runs not yet queued (`FOR UPDATE SKIP LOCKED`, so
relays of several workers never claim the same run), enqueues them with SAQ's `enqueue` and
marks them queued in the same transaction. If Redis fails, the transaction rolls back and the
runs wait for the next pass. If a worker dies between the enqueue and the commit, the next pass
enqueues them again; that is a no-op for a job still queued, and a run's result is written
exactly once anyway (jobs/runs.py). A missed notification costs at most one poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from saq import Queue
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agent_service.core.config import Settings
from agent_service.core.outage import Outage
from agent_service.db.models import ResearchRun
from agent_service.db.runs import RUNS_SAVED_CHANNEL
from agent_service.jobs.queue import backoff_seconds, run_job

BATCH = 500
POLL_SECONDS = 1.0


async def relay_saved_runs(engine: AsyncEngine, queue: Queue, settings: Settings,
                           limit: int = BATCH) -> int:
    """Enqueues up to `limit` saved runs, oldest first; returns how many."""
    async with engine.begin() as connection:
        rows = (await connection.execute(
            select(ResearchRun.id, ResearchRun.request_id, ResearchRun.trace_context)
            .where(ResearchRun.enqueued_at.is_(None), ResearchRun.status == "queued")
            .order_by(ResearchRun.created_at).limit(limit)
            .with_for_update(skip_locked=True))).all()
        if not rows:
            return 0
        for row in rows:
            # A run whose job is still queued is left alone by SAQ (the run id is the key).
            await queue.enqueue(run_job(settings, str(row.id), row.request_id,
                                        trace_context=row.trace_context))
        await connection.execute(update(ResearchRun)
                                 .where(ResearchRun.id.in_([row.id for row in rows]))
                                 .values(enqueued_at=func.now()))
    return len(rows)


class Relay:
    """`run()` relays until cancelled: at once when notified, else every `poll_seconds`."""

    def __init__(self, engine: AsyncEngine, queue: Queue, settings: Settings,
                 poll_seconds: float = POLL_SECONDS) -> None:
        self.engine = engine
        self.queue = queue
        self.settings = settings
        self.poll_seconds = poll_seconds
        self._saved = asyncio.Event()
        self._listener: AsyncConnection | None = None
        self._driver: Any = None
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
                    moved = await relay_saved_runs(self.engine, self.queue, self.settings)
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
        """A pooled connection held for LISTEN; replaced if it was lost (polling meanwhile)."""
        if self._listener is not None:
            if not self._listener.invalidated and not self._driver.is_closed():
                return
            await self._unlisten()
        self.listening.clear()
        try:
            self._listener = await self.engine.connect()
            # LISTEN is a driver feature: the asyncpg connection under the pooled one.
            self._driver = (await self._listener.get_raw_connection()).driver_connection
            await self._driver.add_listener(RUNS_SAVED_CHANNEL, self._notified)
        except Exception as error:  # noqa: BLE001 - Postgres away; poll until it is back
            await self._unlisten()
            self.listens.failed(error)
            return
        self.listens.succeeded()
        self.listening.set()

    def _notified(self, *_: Any) -> None:
        self._saved.set()

    async def _unlisten(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                # Not returned to the pool: a LISTENing session must not serve queries.
                await self._listener.invalidate()
                await self._listener.close()
            self._listener = None
