"""The batched halves of submit and read (core/batching.py): a batch of submissions is one
INSERT and one Redis pipeline, a batch of reads one SELECT."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import partial

import asyncpg

from agent_service.core.batching import MicroBatcher
from agent_service.core.config import Settings
from agent_service.db.hot_path import NewRun, fetch_runs, insert_runs
from agent_service.jobs.queue import ResilientRedisQueue, run_job


@dataclass(frozen=True)
class Submission:
    run: NewRun
    trace_context: dict[str, str]


def submissions(pg: asyncpg.Pool, queue: ResilientRedisQueue,
                settings: Settings) -> MicroBatcher[Submission, None]:
    async def flush(batch: list[Submission]) -> list[None]:
        # The rows are committed before their jobs exist, so a worker never sees a job without
        # its run. If Redis fails in between, the runs stay queued and the reaper
        # (jobs/reaper.py) enqueues them.
        await insert_runs(pg, [s.run for s in batch])
        await queue.enqueue_many([run_job(settings, str(s.run.id), s.run.request_id,
                                          trace_context=s.trace_context) for s in batch])
        return [None] * len(batch)

    # One batch in flight: under load the next batch grows while the database commits, so
    # commits (each a WAL flush) stay few.
    return MicroBatcher(flush, max_in_flight=1)


def run_reads(pg: asyncpg.Pool) -> MicroBatcher[uuid.UUID, asyncpg.Record | None]:
    return MicroBatcher(partial(fetch_runs, pg))
