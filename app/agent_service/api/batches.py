"""The batched halves of submit and read (core/batching.py): a batch of submissions is one
INSERT, a batch of reads one SELECT."""

from __future__ import annotations

import uuid
from functools import partial

import asyncpg

from agent_service.core.batching import MicroBatcher
from agent_service.db.hot_path import NewRun, fetch_runs, insert_runs


def submissions(pg: asyncpg.Pool) -> MicroBatcher[NewRun, None]:
    async def flush(batch: list[NewRun]) -> list[None]:
        # Committed is accepted: the workers' relay (jobs/relay.py) hands saved runs to the
        # queue, so a run is never saved without being queued, nor queued without being saved.
        await insert_runs(pg, batch)
        return [None] * len(batch)

    # One batch in flight: under load the next batch grows while the database commits, so
    # commits (each a WAL flush) stay few.
    return MicroBatcher(flush, max_in_flight=1)


def run_reads(pg: asyncpg.Pool) -> MicroBatcher[uuid.UUID, asyncpg.Record | None]:
    return MicroBatcher(partial(fetch_runs, pg))
