"""Hands lost runs back to the queue.

SAQ's sweeper re-queues a job whose heartbeat lapses, but a worker that dies while the sweeper
is itself aborting the job leaves it in limbo; and a job lost from Redis (a failover to a replica
that had not seen it, a flushed database) leaves a queued run nobody will pick up. Postgres knows
every run's state, so this loop, run by whichever worker holds the Redis lock, finds both and
enqueues them again. (Runs saved but not yet queued are the relay's, jobs/relay.py.) Running a
run twice is safe (jobs/runs.py), so erring towards redelivery loses nothing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import redis.asyncio as redis
import structlog
from saq import Queue
from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_service.core.config import Settings
from agent_service.core.metrics import QUEUE_DEPTH, QUEUE_OLDEST_AGE, RUNS
from agent_service.core.outage import is_outage
from agent_service.db import runs
from agent_service.db.models import ResearchRun
from agent_service.jobs.queue import enqueue_run

log = structlog.get_logger(__name__)
LOCK = "research:reaper:lock"
# A run handed to the queue this long ago and still queued may have lost its job.
ORPHAN_QUEUED_SECONDS = 60
QUEUE_STATS_INTERVAL_SECONDS = 5.0


@dataclass(frozen=True)
class Reaped:
    requeued: list[str]
    failed: list[str]


async def reap(engine: AsyncEngine, client: redis.Redis, queue: Queue,
               settings: Settings) -> Reaped:
    if not await client.set(LOCK, "1", nx=True, ex=max(1, settings.sweep_interval_seconds)):
        return Reaped([], [])  # another worker is reaping
    stale_after = text(f"interval '{settings.job_heartbeat_seconds * 3} seconds'")
    orphan_after = text(f"interval '{ORPHAN_QUEUED_SECONDS} seconds'")
    requeued: list[str] = []
    failed: list[str] = []
    async with engine.connect() as db:
        rows = (await db.execute(
            select(ResearchRun.id, ResearchRun.status, ResearchRun.attempts,
                   ResearchRun.request_id)
            .where(or_(
                and_(ResearchRun.status == "running",
                     ResearchRun.heartbeat_at < func.now() - stale_after),
                # A queued run handed back in the last minute is not handed back again, so
                # more than a page of orphans cannot starve the ones past the first page.
                and_(ResearchRun.status == "queued",
                     ResearchRun.enqueued_at < func.now() - orphan_after,
                     or_(ResearchRun.heartbeat_at.is_(None),
                         ResearchRun.heartbeat_at < func.now() - orphan_after))))
            .order_by(ResearchRun.created_at)
            .limit(100))).all()
        for row in rows:
            run_id = str(row.id)
            if row.status == "running" and row.attempts >= settings.job_retries:
                gave_up = await runs.fail(db, run_id,
                                          f"worker lost {row.attempts} times; giving up")
                await db.commit()
                if gave_up:
                    RUNS.labels("failed").inc()
                    failed.append(run_id)
                continue
            # Claim the redelivery so two reapers (or two passes) never both enqueue it.
            claimed = (await db.execute(
                update(ResearchRun).where(ResearchRun.id == uuid.UUID(run_id),
                                          ResearchRun.status == row.status)
                .values(heartbeat_at=func.now()).returning(ResearchRun.id))).first()
            await db.commit()
            if claimed is None:
                continue
            key = run_id if row.status == "queued" else f"{run_id}:redelivery:{row.attempts}"
            await enqueue_run(queue, settings, run_id, row.request_id, key=key)
            requeued.append(run_id)
    if requeued or failed:
        log.warning("reaped lost runs", requeued=requeued, failed=failed)
    return Reaped(requeued, failed)


async def upkeep(engine: AsyncEngine, client: redis.Redis, queue: Queue,
                 settings: Settings) -> None:
    """Publishes queue depth and age, and hands lost runs back to the queue, until cancelled.

    After an outage the reaper holds off for one heartbeat window: the heartbeats runs missed
    while Postgres was away say nothing about their workers, which resume within seconds.
    """
    stale_window = settings.job_heartbeat_seconds * 3
    reachable_since = -float(stale_window)
    while True:
        try:
            async with engine.connect() as db:
                depth, oldest = await runs.queue_stats(db)
            QUEUE_DEPTH.set(depth)
            QUEUE_OLDEST_AGE.set(oldest)
            if time.monotonic() - reachable_since >= stale_window:
                await reap(engine, client, queue, settings)
        except Exception as error:  # noqa: BLE001 - a failed pass must not stop the worker
            if is_outage(error):
                reachable_since = time.monotonic()
                log.warning("worker upkeep skipped: backing service unavailable",
                            error=f"{type(error).__name__}: {error}")
            else:
                log.exception("worker upkeep failed")
        await asyncio.sleep(min(QUEUE_STATS_INTERVAL_SECONDS, settings.sweep_interval_seconds))
