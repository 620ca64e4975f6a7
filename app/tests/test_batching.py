"""Group commit (core/batching.py) and the worker's event log built on it (real servers)."""

from __future__ import annotations

import asyncio
import contextvars
import json

import pytest
import redis.asyncio as redis
from sqlalchemy import text
from support import api_client

from agent_service.agent.events import EventLog, channel
from agent_service.core.batching import MicroBatcher
from agent_service.core.config import Settings
from agent_service.db.session import make_engine

pytestmark = pytest.mark.anyio
QUESTION = {"question": "How does Kubernetes roll out a Deployment?", "max_sources": 3}


class Recorder:
    """A flush that records its batches and waits for `release` before answering."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        await self.release.wait()
        return [item * 10 for item in items]


async def test_items_arriving_during_a_flush_share_the_next_one() -> None:
    flush = Recorder()
    batcher: MicroBatcher[int, int] = MicroBatcher(flush, max_in_flight=1)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.01)  # the first flush is now waiting on `release`
    rest = [asyncio.ensure_future(batcher.submit(n)) for n in range(2, 7)]
    await asyncio.sleep(0.01)
    flush.release.set()
    assert await asyncio.gather(first, *rest) == [10, 20, 30, 40, 50, 60]
    assert flush.batches == [[1], [2, 3, 4, 5, 6]]


async def test_batches_are_capped_and_flushes_overlap_up_to_the_limit() -> None:
    flush = Recorder()
    batcher: MicroBatcher[int, int] = MicroBatcher(flush, max_batch=3, max_in_flight=2)
    waiting = [asyncio.ensure_future(batcher.submit(n)) for n in range(7)]
    await asyncio.sleep(0.01)
    assert flush.batches == [[0, 1, 2], [3, 4, 5]]  # two in flight, the seventh waits
    flush.release.set()
    assert await asyncio.gather(*waiting) == [n * 10 for n in range(7)]
    assert flush.batches[-1] == [6]


async def test_a_failed_flush_fails_its_batch_only() -> None:
    calls = 0

    async def flaky(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("postgres went away")
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(flaky, max_in_flight=1)
    failed = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.01)  # the first batch has failed
    later = asyncio.ensure_future(batcher.submit(2))
    with pytest.raises(ConnectionError, match="postgres went away"):
        await failed
    assert await later == 2


async def test_a_flush_with_the_wrong_number_of_results_is_an_error() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    batcher: MicroBatcher[int, int] = MicroBatcher(short)
    with pytest.raises(RuntimeError, match="1 results for 2 items"):
        await asyncio.gather(batcher.submit(1), batcher.submit(2))


async def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    flush = Recorder()
    batcher: MicroBatcher[int, int] = MicroBatcher(flush, max_in_flight=1)
    leaving = asyncio.ensure_future(batcher.submit(1))
    staying = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0)
    leaving.cancel()
    flush.release.set()
    assert await staying == 20
    assert flush.batches == [[1, 2]]


async def test_callers_that_submit_again_as_soon_as_answered_are_never_stranded() -> None:
    async def echo(items: list[int]) -> list[int]:
        await asyncio.sleep(0)
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(echo, max_in_flight=1)

    async def caller(first: int) -> list[int]:
        return [await batcher.submit(n) for n in range(first, first + 50)]

    # A stranded item waits forever; the bound turns that hang into a failure.
    answers = await asyncio.wait_for(
        asyncio.gather(*(caller(100 * c) for c in range(8))), timeout=10)
    assert answers == [list(range(100 * c, 100 * c + 50)) for c in range(8)]


async def test_drain_waits_for_accepted_items_and_flushes_carry_no_request_context() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id",
                                                                      default="none")
    seen: list[str] = []

    async def slow(items: list[int]) -> list[int]:
        await asyncio.sleep(0.05)
        seen.append(request_id.get())
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(slow)
    request_id.set("req-1")
    pending = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0)
    await batcher.drain()
    assert pending.done() and pending.result() == 1
    assert seen == ["none"]


async def test_events_of_concurrent_runs_are_stored_published_and_beat(
        settings: Settings, auth: dict[str, str]) -> None:
    async with api_client(settings) as http:
        ids = [(await http.post("/api/v1/research", json=QUESTION, headers=auth)).json()["id"]
               for _ in range(4)]
        await http.post(f"/api/v1/research/{ids[3]}/cancel", headers=auth)
    engine = make_engine(settings.database_url.get_secret_value(), pool_size=2)
    client = redis.from_url(settings.redis_url.get_secret_value())
    pubsub = client.pubsub()
    await pubsub.subscribe(*(channel(i) for i in ids))
    log = EventLog(engine, client)
    try:
        statuses = await asyncio.gather(
            log.record(ids[0], "plan", {"queries": ["a"]}, heartbeat=True),
            log.record(ids[1], "search", {"hits": 2}, heartbeat=True),
            log.record(ids[2], "read", {"number": 1}),
            log.record(ids[3], "plan", {"queries": ["b"]}, heartbeat=True))
        published: list[tuple[str, dict[str, object]]] = []
        async with asyncio.timeout(10):
            while len(published) < 4:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message:
                    published.append((message["channel"].decode(),
                                      json.loads(message["data"])))
        async with engine.connect() as connection:
            rows = (await connection.execute(text(
                "SELECT e.id, e.run_id::text, e.type, e.data, "
                "r.heartbeat_at IS NOT NULL AS beat FROM run_events e "
                "JOIN research_runs r ON r.id = e.run_id "
                "WHERE e.type <> 'cancelled' ORDER BY e.id"))).mappings().all()
    finally:
        await log.drain()
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()
        await engine.dispose()
    # Heartbeats return the run's status (a cancel reaches the worker this way); others None.
    assert list(statuses) == ["queued", "queued", None, "cancelled"]
    stored = {row["run_id"]: (row["id"], row["type"], row["data"]) for row in rows}
    assert [stored[i][1] for i in ids] == ["plan", "search", "read", "plan"]
    assert len({stored[i][0] for i in ids}) == 4
    assert {row["run_id"]: row["beat"] for row in rows} == {
        ids[0]: True, ids[1]: True, ids[2]: False, ids[3]: True}
    # Each run's channel got its own event, with the id the table gave it.
    assert sorted(published) == sorted(
        (channel(i), {"id": stored[i][0], "type": stored[i][1], "data": stored[i][2]})
        for i in ids)
