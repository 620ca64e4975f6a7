"""The worker process: runs research jobs from the queue.

Delivery is at least once: a job whose worker dies is swept back into the queue once its
heartbeat lapses, so the task is written to be repeatable (see db/runs.py).

An outage of Postgres or Redis is not the run's fault: every read and write of a run waits it
out (core/outage.py) for up to `outage_tolerance_seconds`, resuming within seconds of the
service's return, and never spends one of the run's attempts or marks it failed. A run still
blocked after that is handed back: it keeps its state, and the reaper re-queues it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as redis
import structlog
import uvloop
from saq import Status, Worker
from saq.types import Context, PartialTimersDict
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agent_service.agent.events import EventLog
from agent_service.agent.loop import Budget, BudgetExceeded, ResearchAgent, RunCancelled
from agent_service.agent.search import Hit, search
from agent_service.core.config import Settings, get_settings
from agent_service.core.gc_tuning import freeze_startup_objects
from agent_service.core.metrics import RUN_DURATION, RUNS
from agent_service.core.outage import is_outage, outlast
from agent_service.core.redis_client import make_redis
from agent_service.core.tracing import configure_tracing, run_span
from agent_service.db import runs
from agent_service.db.session import make_engine
from agent_service.jobs import health
from agent_service.jobs.queue import TASK, ResilientRedisQueue, keep_alive, make_queue
from agent_service.jobs.reaper import upkeep
from agent_service.jobs.relay import Relay
from agent_service.llm.router import AllProvidersFailed, LLMRouter, build_providers

log = structlog.get_logger(__name__)
T = TypeVar("T")
# Postgres connections per worker process, whatever its concurrency: runs hold a connection
# only for single short statements, so waiting for one briefly is far cheaper than exhausting
# max_connections as workers scale out. One of them is the relay's LISTEN.
MAX_POOL_SIZE = 8
# Each idle job slot waits this long for a job in one Redis command, then starts another; a
# stopping worker's idle slots end within it. Every wake-up costs a Redis round trip, so with
# hundreds of slots a short wait is a busy loop (at 1 s, 1,000 idle slots cost a worker half a
# core: `make bench-app`).
IDLE_SLOT_WAKEUP_SECONDS = 5
# SAQ's abort check reads every running job from Redis; runs are cancelled through their row
# (db/runs.py), so SAQ's own abort only serves operators and is checked this seldom.
ABORT_CHECK_SECONDS = 5
# One per process: the health endpoint's thread reads what the event loop's task writes.
LIVENESS = health.Liveness(limit_seconds=60.0)


class WorkerContext(Context, total=False):
    """SAQ's task context, with what this worker keeps in it: `settings` from `serve_worker`,
    the rest from `startup` (absent when start-up failed before making it)."""

    settings: Settings
    research_queue: ResilientRedisQueue
    engine: AsyncEngine
    redis: redis.Redis
    event_log: EventLog
    router: LLMRouter
    agent: ResearchAgent
    stats_task: asyncio.Task[None]
    relay_task: asyncio.Task[None]
    liveness_task: asyncio.Task[None]


async def startup(ctx: WorkerContext) -> None:
    settings = ctx["settings"]
    # Runs beyond the pool wait for a connection; after 30 s that counts as an outage and is
    # waited out like one. No ping per checkout (a round trip per statement): every statement
    # here waits out outages, so a connection broken by a restart fails once, SQLAlchemy drops
    # the whole pool, and the retry runs on a new connection.
    ctx["engine"] = make_engine(settings.database_url.get_secret_value(),
                                pool_size=min(MAX_POOL_SIZE, settings.worker_concurrency + 2),
                                pool_timeout=30, pre_ping=False)
    ctx["redis"] = make_redis(settings.redis_url.get_secret_value())
    ctx["event_log"] = EventLog(ctx["engine"], ctx["redis"])
    ctx["router"] = LLMRouter(build_providers(settings), ctx["redis"], settings,
                              settings.prices())
    ctx["agent"] = ResearchAgent(ctx["router"], Budget(
        settings.agent_max_iterations, settings.agent_max_tokens,
        settings.agent_wall_clock_seconds))
    ctx["stats_task"] = asyncio.create_task(
        upkeep(ctx["engine"], ctx["redis"], ctx["research_queue"], settings))
    ctx["relay_task"] = asyncio.create_task(
        Relay(ctx["engine"], ctx["research_queue"], settings).run())
    ctx["liveness_task"] = asyncio.create_task(LIVENESS.run())
    freeze_startup_objects()
    log.info("worker started", concurrency=settings.worker_concurrency,
             providers=settings.llm_providers)


async def shutdown(ctx: WorkerContext) -> None:
    # Closes what start-up made, which is not everything when start-up failed half-way.
    for task in (ctx.get("stats_task"), ctx.get("relay_task"), ctx.get("liveness_task")):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if "event_log" in ctx:
        await ctx["event_log"].drain()
    if "router" in ctx:
        await ctx["router"].aclose()
    if "redis" in ctx:
        await ctx["redis"].aclose()
    if "engine" in ctx:
        await ctx["engine"].dispose()
    log.info("worker stopped")


async def _durably(ctx: WorkerContext, what: str,
                   action: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """`action` in a transaction of its own, waiting out an outage (see the module
    docstring)."""
    async def attempt() -> T:
        async with ctx["engine"].begin() as db:
            return await action(db)

    return await outlast(attempt, ctx["settings"].outage_tolerance_seconds, what)


async def _record(ctx: WorkerContext, run_id: str, kind: str, data: dict[str, Any],
                  heartbeat: bool = False) -> str | None:
    """Stores and publishes a run event, waiting out an outage; with `heartbeat`, returns the
    run's status."""
    return await outlast(lambda: ctx["event_log"].record(run_id, kind, data, heartbeat),
                         ctx["settings"].outage_tolerance_seconds, f"record {kind} event")


async def run_research(ctx: WorkerContext, *, run_id: str, request_id: str | None = None,
                       trace_context: dict[str, str] | None = None) -> str:
    """Runs one research job; safe to run again for the same run (at-least-once delivery)."""
    with run_span(run_id, trace_context, **{"agent.attempt": ctx["job"].attempts}):
        structlog.contextvars.bind_contextvars(run_id=run_id, request_id=request_id)
        beating = asyncio.create_task(keep_alive(ctx["job"]))
        try:
            return await _run_research(ctx, run_id)
        except Exception as error:
            if not is_outage(error):
                raise
            # Not an attempt of the run: it keeps its state and the reaper re-queues it.
            log.warning("run handed back: backing service unavailable for longer than "
                        "outage_tolerance_seconds", error=f"{type(error).__name__}: {error}")
            return "handed back"
        finally:
            beating.cancel()
            structlog.contextvars.unbind_contextvars("run_id", "request_id")


async def _run_research(ctx: WorkerContext, run_id: str) -> str:
    job, settings = ctx["job"], ctx["settings"]
    claimed = await _durably(ctx, "claim run", lambda s: runs.claim(s, run_id))
    if claimed is None:
        log.info("run already finished or cancelled; duplicate delivery ignored")
        return "skipped"

    last_status = "running"

    async def emit(kind: str, data: dict[str, Any]) -> None:
        nonlocal last_status
        # Every event is also a heartbeat for our reaper and tells us the run's status.
        last_status = await _record(ctx, run_id, kind, data, heartbeat=True) or last_status

    async def cancelled() -> bool:
        return last_status == "cancelled"

    async def find(query: str, limit: int) -> list[Hit]:
        return await _durably(ctx, "search", lambda s: search(s, query, claimed.tenant, limit))

    await emit("started", {"attempt": job.attempts, "worker": job.worker_id})
    try:
        # A Redis outage mid-run (the LLM cache and circuit breaker live there) starts the
        # research again once Redis is back; a run's own errors end the wait at once.
        result = await outlast(
            lambda: ctx["agent"].run(claimed.question, claimed.max_sources, emit, cancelled,
                                     find),
            settings.outage_tolerance_seconds, "research")
    except RunCancelled:
        await _record(ctx, run_id, "cancelled", {})
        log.info("run cancelled")
        return "cancelled"
    except BudgetExceeded as error:
        return await _finish_failed(ctx, run_id, str(error), claimed.created_at_epoch)
    except AllProvidersFailed as error:
        if job.retryable:
            await emit("retrying", {"attempt": job.attempts, "error": str(error)})
            raise
        return await _finish_failed(ctx, run_id, f"LLM providers failed: {error}",
                                    claimed.created_at_epoch)

    won = await _durably(ctx, "save result", lambda s: runs.complete(
        s, run_id, answer=result.answer, sources=result.sources,
        prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
        cost_usd=result.cost_usd))
    if not won:
        log.info("result already written by another delivery or run cancelled")
        return "skipped"
    RUNS.labels("succeeded").inc()
    RUN_DURATION.observe(max(0.0, time.time() - claimed.created_at_epoch))
    await _record(ctx, run_id, "completed", {"sources": len(result.sources),
                                             "cost_usd": str(result.cost_usd)})
    log.info("run succeeded", tokens=result.prompt_tokens + result.completion_tokens)
    return "succeeded"


async def _finish_failed(ctx: WorkerContext, run_id: str, error: str,
                         created_at_epoch: float | None) -> str:
    won = await _durably(ctx, "save failure", lambda s: runs.fail(s, run_id, error))
    if won:
        RUNS.labels("failed").inc()
        if created_at_epoch is not None:
            RUN_DURATION.observe(max(0.0, time.time() - created_at_epoch))
        await _record(ctx, run_id, "failed", {"error": error})
        log.warning("run failed", run_id=run_id, error=error)
    return "failed"


async def after_process(ctx: WorkerContext) -> None:
    # A job that timed out or raised on its last attempt ends FAILED in the queue; the run
    # must not stay "running" forever.
    job = ctx.get("job")
    if job is None or job.function != TASK or job.status != Status.FAILED:
        return
    run_id = (job.kwargs or {}).get("run_id")
    if run_id:
        last_line = (job.error or "unknown error").strip().splitlines()[-1]
        await _finish_failed(ctx, run_id, f"job failed after {job.attempts} attempt(s): "
                                          f"{last_line}", None)


def build_worker(settings: Settings) -> Worker[WorkerContext]:
    # SAQ's upkeep loops sleep a full interval before noticing a stop, so they are kept
    # short enough not to stretch every shutdown to the grace period.
    timers: PartialTimersDict = {"sweep": settings.sweep_interval_seconds,
                                 "worker_info": settings.sweep_interval_seconds,
                                 "abort": ABORT_CHECK_SECONDS, "schedule": 1}
    queue = make_queue(settings)
    worker = Worker[WorkerContext](
        queue,
        functions=[(TASK, run_research)],
        concurrency=settings.worker_concurrency,
        startup=startup,
        shutdown=shutdown,
        after_process=after_process,
        timers=timers,
        shutdown_grace_period_s=settings.shutdown_grace_seconds,
        # Idle slots wake up now and then, so a stopping worker does not sit out the whole
        # grace period waiting on an empty queue.
        dequeue_timeout=IDLE_SLOT_WAKEUP_SECONDS,
    )
    worker.context["research_queue"] = queue
    return worker


def run_worker(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    configure_tracing(settings, "worker")
    LIVENESS.limit_seconds = settings.worker_liveness_seconds
    if settings.worker_metrics_port:
        health.serve(settings.worker_metrics_port, LIVENESS)
    # uvloop (installed with uvicorn[standard]) roughly halves the event loop's own overhead,
    # which is most of a worker's CPU between database and Redis round trips.
    uvloop.run(serve_worker(settings))


async def serve_worker(settings: Settings) -> None:
    """Processes jobs until SIGTERM/SIGINT, then drains within the grace period."""
    worker = build_worker(settings)
    worker.context["settings"] = settings
    await worker.queue.connect()
    try:
        await worker.start()
    finally:
        # Stopping must not fail because Redis already went away (as on a whole-stack stop).
        try:
            await worker.queue.disconnect()
        except (ConnectionError, redis.ConnectionError) as error:
            log.warning("queue disconnect failed; Redis is gone", error=str(error))
