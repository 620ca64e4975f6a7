"""The batched halves of submit and read (core/batching.py): a batch of submissions is one
rate-limit round trip and one INSERT, a batch of reads one SELECT."""

from __future__ import annotations

import uuid
from functools import partial

import asyncpg

from agent_service.auth.ratelimit import RateLimiter
from agent_service.core.batching import MicroBatcher
from agent_service.db.hot_path import NewRun, fetch_runs, insert_runs


def admissions(pg: asyncpg.Pool,
               limiter: RateLimiter) -> MicroBatcher[NewRun, float | None]:
    """Per run, None once it is saved, or the seconds its key must wait (rate limited, not saved).

    Both halves in one batch: each request waits for one flush instead of a rate-limit flush
    and then an insert flush, and the single stage gathers larger batches under load.
    """
    async def flush(batch: list[NewRun]) -> list[float | None]:
        waits = await limiter.check_many([str(run.api_key_id) for run in batch])
        admitted = [run for run, wait in zip(batch, waits, strict=True) if wait is None]
        if admitted:
            # Committed is accepted: the workers' relay (jobs/relay.py) hands saved runs to
            # the queue, so a run is never saved without being queued, nor queued without
            # being saved.
            await insert_runs(pg, admitted)
        return waits

    # One batch in flight: under load the next batch grows while the database commits, so
    # commits (each a WAL flush) stay few.
    return MicroBatcher(flush, max_in_flight=2)


def run_reads(pg: asyncpg.Pool) -> MicroBatcher[uuid.UUID, asyncpg.Record | None]:
    return MicroBatcher(partial(fetch_runs, pg))
