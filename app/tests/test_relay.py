"""The outbox relay and the reaper, against real Postgres and Redis: saved runs reach the queue
once, whatever fails in between."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import pytest
import redis.asyncio as redis
from devtools.servers import free_port
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collected, api_client, database, key_id, make_settings, new_key, save_runs

from agent_service.core.config import Settings
from agent_service.core.logging import configure_logging
from agent_service.db.models import ResearchRun
from agent_service.jobs.queue import TASK, ResilientRedisQueue, make_queue
from agent_service.jobs.reaper import LOCK as REAPER_LOCK
from agent_service.jobs.reaper import reap
from agent_service.jobs.relay import Relay, relay_saved_runs

pytestmark = pytest.mark.anyio
QUESTION = {"question": "How does Kubernetes roll out a Deployment?", "max_sources": 3}


async def _relay_everything(engine: AsyncEngine, queue: ResilientRedisQueue,
                            settings: Settings) -> None:
    # Other tests' submissions are saved and never relayed; queue them so these tests count
    # only their own runs.
    while await relay_saved_runs(engine, queue, settings):
        pass


async def test_concurrent_submissions_are_all_stored_and_queued(settings: Settings,
                                                                auth: dict[str, str]) -> None:
    async with api_client(settings) as http:
        responses = await asyncio.gather(*(
            http.post("/api/v1/research", json={**QUESTION, "max_sources": 1 + n % 5},
                      headers={**auth, "X-Request-ID": f"batch-{n}"}) for n in range(40)))
        assert {r.status_code for r in responses} == {202}
        ids = [r.json()["id"] for r in responses]
        assert len(set(ids)) == 40
        runs = await asyncio.gather(*(http.get(f"/api/v1/research/{i}", headers=auth)
                                      for i in ids))
    assert [r.json()["max_sources"] for r in runs] == [1 + n % 5 for n in range(40)]
    assert {r.json()["status"] for r in runs} == {"queued"}
    queue = make_queue(settings)
    await queue.connect()
    try:
        async with database(settings) as engine:
            async with engine.connect() as connection:
                assert not await connection.scalar(
                    select(func.count()).where(ResearchRun.id.in_(ids),
                                               ResearchRun.enqueued_at.is_not(None))), \
                    "the API saves; the relay queues"
            await _relay_everything(engine, queue, settings)
        jobs = await asyncio.gather(*(queue.job(i) for i in ids))
    finally:
        await queue.disconnect()
    assert all(job is not None and job.function == TASK for job in jobs)
    kwargs = [job.kwargs or {} for job in jobs if job]
    assert [k["run_id"] for k in kwargs] == ids
    assert [k["request_id"] for k in kwargs] == [f"batch-{n}" for n in range(40)]


async def test_the_relay_queues_saved_runs_once_redis_is_back(settings: Settings) -> None:
    """Runs a relay could not enqueue stay saved and unqueued, and the next pass takes them."""
    url = settings.database_url.get_secret_value()
    gone = make_queue(make_settings({"database_url": url,
                                     "redis_url": f"redis://127.0.0.1:{free_port()}/0"}))
    queue = make_queue(settings)
    await queue.connect()
    ids = [uuid.uuid4() for _ in range(3)]
    try:
        async with database(settings) as engine:
            await _relay_everything(engine, queue, settings)
            owner = await key_id(engine, await new_key(settings, "queue-gone"))
            await save_runs(engine, owner, ids, "Where did the queue go?", "lost-1",
                            {"traceparent": "00-ab-cd-01"})
            with pytest.raises(redis.ConnectionError):
                await relay_saved_runs(engine, gone, settings)
            async with engine.connect() as connection:
                unqueued = await connection.scalar(select(func.count()).where(
                    ResearchRun.id.in_(ids), ResearchRun.enqueued_at.is_(None),
                    ResearchRun.status == "queued"))
            assert unqueued == 3, "a failed pass leaves the runs for the next"
            assert await relay_saved_runs(engine, queue, settings) == 3
            assert await relay_saved_runs(engine, queue, settings) == 0
        jobs = await asyncio.gather(*(queue.job(str(i)) for i in ids))
    finally:
        await queue.disconnect()
    assert all(job is not None and job.function == TASK for job in jobs)
    assert [(job.kwargs or {})["trace_context"] for job in jobs if job] == [
        {"traceparent": "00-ab-cd-01"}] * 3


async def test_concurrent_relays_claim_each_run_once(settings: Settings) -> None:
    queue = make_queue(settings)
    await queue.connect()
    try:
        async with database(settings) as engine:
            await _relay_everything(engine, queue, settings)
            owner = await key_id(engine, await new_key(settings, "relays"))
            await save_runs(engine, owner, [uuid.uuid4() for _ in range(300)], "Who takes me?")
            moved = await asyncio.gather(*(relay_saved_runs(engine, queue, settings, limit=200)
                                           for _ in range(3)))
    finally:
        await queue.disconnect()
    assert sum(moved) == 300 and max(moved) <= 200


async def test_a_running_relay_is_woken_by_the_commit(settings: Settings,
                                                      auth: dict[str, str]) -> None:
    queue = make_queue(settings)
    await queue.connect()
    async with database(settings) as engine:
        # Polling once a minute: only the notification can wake it within the test's bound.
        relay = Relay(engine, queue, settings, poll_seconds=60)
        await _relay_everything(engine, queue, settings)
        task = asyncio.create_task(relay.run())
        try:
            await asyncio.wait_for(relay.listening.wait(), 10)
            async with api_client(settings) as http:
                run_id = (await http.post("/api/v1/research", json=QUESTION,
                                          headers=auth)).json()["id"]
            for _ in range(100):
                if await queue.job(run_id) is not None:
                    break
                await asyncio.sleep(0.1)
            assert await queue.job(run_id) is not None, "not queued within 10 s"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await queue.disconnect()


async def test_a_relay_that_cannot_listen_says_so_once_then_once_more_when_it_can(
        servers: dict[str, str], settings: Settings) -> None:
    queue = make_queue(settings)
    await queue.connect()
    unreachable = make_settings(
        servers, database_url=f"postgresql://agent@127.0.0.1:{free_port()}/agent")
    configure_logging(settings.log_level)  # as the worker does when it starts
    logger = logging.getLogger("agent_service.jobs.relay")
    collected, level = Collected(), logger.level
    logger.addHandler(collected)
    logger.setLevel(logging.INFO)  # the suite's settings log warnings only
    async with database(make_settings(servers, **{
            "database_url": unreachable.database_url.get_secret_value()})) as gone, \
            database(settings) as engine:
        relay = Relay(gone, queue, settings, poll_seconds=0.01)
        task = asyncio.create_task(relay.run())
        try:
            for _ in range(1000):
                if relay.listens.failures >= 3:
                    break
                await asyncio.sleep(0.01)
            assert relay.listens.failures >= 3 and not relay.listening.is_set()
            relay.engine = engine  # the database is reachable again
            await asyncio.wait_for(relay.listening.wait(), 10)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            logger.removeHandler(collected)
            logger.setLevel(level)
            await queue.disconnect()
    said = [(e["event"], e.get("failed_attempts")) for e in collected.events]
    assert ("relay cannot listen; polling until it can", None) in said
    assert said.count(("relay cannot listen; polling until it can", None)) == 1
    [(_, attempts)] = [s for s in said if s[0] == "relay listening again"]
    assert attempts is not None and attempts >= 3


async def test_more_orphans_than_a_reaper_page_are_all_handed_back(settings: Settings) -> None:
    ids = [uuid.uuid4() for _ in range(101)]
    client = redis.from_url(settings.redis_url.get_secret_value())
    queue = make_queue(settings)
    await queue.connect()
    passes: list[set[str]] = []
    try:
        async with database(settings) as engine:
            owner = await key_id(engine, await new_key(settings, "orphans"))
            await save_runs(engine, owner, ids)
            # Queued long ago and older than any other test's runs, so these are the first the
            # reaper pages through.
            async with engine.begin() as connection:
                await connection.execute(
                    update(ResearchRun).where(ResearchRun.id.in_(ids)).values(
                        created_at=func.now() - func.make_interval(0, 0, 0, 0, 2),
                        enqueued_at=func.now() - func.make_interval(0, 0, 0, 0, 2)))
            for _ in range(2):
                await client.delete(REAPER_LOCK)
                passes.append(set((await reap(engine, client, queue, settings)).requeued)
                              & set(map(str, ids)))
    finally:
        await queue.disconnect()
        await client.aclose()
    # A page of 100, then the one left: a run just handed back is not handed back again.
    assert [len(p) for p in passes] == [100, 1]
    assert passes[0] | passes[1] == set(map(str, ids))
