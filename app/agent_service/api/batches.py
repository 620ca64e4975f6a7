"""The batched halves of submit and read (core/batching.py): a batch of submissions is one
INSERT and one Redis pipeline, a batch of reads one SELECT."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import partial

import asyncpg
import structlog

from agent_service.core.batching import MicroBatcher
from agent_service.core.config import Settings
from agent_service.core.errors import UNAVAILABLE
from agent_service.db.hot_path import NewRun, fetch_runs, insert_runs
from agent_service.jobs.queue import ResilientRedisQueue, run_job

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Submission:
    run: NewRun
    trace_context: dict[str, str]


def submissions(pg: asyncpg.Pool, queue: ResilientRedisQueue,
                settings: Settings) -> MicroBatcher[Submission, None]:
    async def flush(batch: list[Submission]) -> list[None]:
        # The rows are committed before their jobs exist, so a worker never sees a job without
        # its run.
        await insert_runs(pg, [s.run for s in batch])
        try:
            await queue.enqueue_many([run_job(settings, str(s.run.id), s.run.request_id,
                                              trace_context=s.trace_context) for s in batch])
        except UNAVAILABLE as error:
            # The runs are saved: they are accepted. An error here would make clients submit
            # them again, and both copies would run. The reaper (jobs/reaper.py) enqueues runs
            # left queued without a job.
            log.warning("runs saved but not enqueued; the reaper will enqueue them",
                        run_ids=[str(s.run.id) for s in batch],
                        error=f"{type(error).__name__}: {error}")
        return [None] * len(batch)

    # One batch in flight: under load the next batch grows while the database commits, so
    # commits (each a WAL flush) stay few.
    return MicroBatcher(flush, max_in_flight=1)


def run_reads(pg: asyncpg.Pool) -> MicroBatcher[uuid.UUID, asyncpg.Record | None]:
    return MicroBatcher(partial(fetch_runs, pg))
