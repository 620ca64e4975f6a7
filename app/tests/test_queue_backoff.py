"""A worker whose Redis is gone backs off instead of spinning."""

from __future__ import annotations

import pytest
from devtools.servers import free_port
from saq import Job

from agent_service.core.config import Settings
from agent_service.jobs.queue import (
    TASK,
    ResilientRedisQueue,
    backoff_seconds,
    keep_alive,
    make_queue,
)


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff_seconds(50) == 10.0


@pytest.mark.anyio
async def test_a_failed_dequeue_waits_and_reports_no_job(settings: Settings) -> None:
    waits: list[float] = []

    async def record(delay: float) -> None:
        waits.append(delay)

    # Nothing listens on this port: every Redis call fails to connect.
    unreachable = settings.model_copy(update={"redis_url": type(settings.redis_url)(
        f"redis://127.0.0.1:{free_port()}/0")})
    queue = make_queue(unreachable)
    assert isinstance(queue, ResilientRedisQueue)
    queue.wait = record
    assert await queue.dequeue(timeout=0.1) is None
    assert await queue.dequeue(timeout=0.1) is None
    assert waits == [0.5, 1.0]
    assert queue.outage.failures == 2


@pytest.mark.anyio
async def test_a_reachable_queue_resets_the_backoff(settings: Settings) -> None:
    queue = make_queue(settings)
    assert isinstance(queue, ResilientRedisQueue)
    await queue.connect()
    queue.outage.failures = 3
    try:
        assert await queue.dequeue(timeout=0.1) is None  # empty queue, no error
        assert queue.outage.failures == 0
    finally:
        await queue.disconnect()


@pytest.mark.anyio
async def test_a_heartbeat_redis_refused_is_retried_within_a_second(settings: Settings) -> None:
    """A run's heartbeat must land as soon as Redis is back: retried every second, not a whole
    beat later, so an outage shorter than the heartbeat period never lets the sweeper take the
    job from a live worker."""
    unreachable = settings.model_copy(update={"redis_url": type(settings.redis_url)(
        f"redis://127.0.0.1:{free_port()}/0")})
    down, up = make_queue(unreachable), make_queue(settings)
    job = Job(function=TASK, key="heartbeat-test", heartbeat=15, queue=down)
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        if len(sleeps) == 3:
            job.queue = up  # Redis is back
        if len(sleeps) == 4:
            job.heartbeat = 0  # the job ends after this beat

    await keep_alive(job, sleep)
    # A beat (15 s / 3), two refused updates retried after 1 s each, then the next beat.
    assert sleeps == [5.0, 1.0, 1.0, 5.0]
    assert await up.job(job.key) is not None
    await up.disconnect()  # `down` never connected
