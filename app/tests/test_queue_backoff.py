"""A worker whose Redis is gone backs off instead of spinning."""

from __future__ import annotations

import pytest
from devtools.servers import free_port

from agent_service.core.config import Settings
from agent_service.jobs.queue import ResilientRedisQueue, backoff_seconds, make_queue


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
