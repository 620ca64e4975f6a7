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
    and then an insert flush, one wake-up fewer per request.
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

    # Three in flight: a flush waits on Redis and then on a commit, and with fewer the API
    # sat idle under load with every request waiting on one (paired runs, 16 connections:
    # busy about 74 % of the time with one in flight, 83-86 % with two, 85-90 % with three, at
    # the same CPU per request).
    return MicroBatcher(flush, max_in_flight=3)


def run_reads(pg: asyncpg.Pool) -> MicroBatcher[uuid.UUID, asyncpg.Record | None]:
    return MicroBatcher(partial(fetch_runs, pg))
