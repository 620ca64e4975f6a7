"""Group commit (core/batching.py) and the API paths built on it, against real servers."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import uuid

import asyncpg
import pytest
import redis.asyncio as redis
from devtools.servers import free_port
from saq import Status
from support import Collected, api_client, make_settings, new_key

from agent_service.agent.events import EventLog, channel
from agent_service.auth.keys import hash_key
from agent_service.auth.ratelimit import RateLimiter
from agent_service.core.batching import MicroBatcher
from agent_service.core.config import Settings
from agent_service.core.logging import configure_logging
from agent_service.db.hot_path import NewRun, create_pool, find_key, insert_runs
from agent_service.db.session import make_engine, make_sessionmaker
from agent_service.jobs.queue import TASK, ResilientRedisQueue, make_queue, run_job
from agent_service.jobs.reaper import LOCK as REAPER_LOCK
from agent_service.jobs.reaper import reap
from agent_service.jobs.relay import Relay, relay_saved_runs

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


async def test_concurrent_checks_admit_exactly_the_limit(settings: Settings) -> None:
    client = redis.from_url(settings.redis_url.get_secret_value())
    limiter = RateLimiter(client, settings.redis_url.get_secret_value(), "5/minute")
    key = f"key-{uuid.uuid4()}"
    other = f"key-{uuid.uuid4()}"
    try:
        verdicts = await asyncio.gather(*(limiter.check(key) for _ in range(12)),
                                        *(limiter.check(other) for _ in range(3)))
    finally:
        await client.aclose()
    mine, theirs = verdicts[:12], verdicts[12:]
    assert mine[:5] == [None] * 5
    assert all(wait is not None and 1 <= wait <= 60 for wait in mine[5:])
    assert theirs == [None] * 3


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
    pool = await create_pool(settings.database_url.get_secret_value(), 2)
    try:
        assert not await pool.fetchval(
            "SELECT count(*) FROM research_runs WHERE id = ANY($1::uuid[]) AND "
            "enqueued_at IS NOT NULL", ids), "the API saves; the relay queues"
        await _relay_everything(pool, queue, settings)
        jobs = await asyncio.gather(*(queue.job(i) for i in ids))
    finally:
        await queue.disconnect()
        await pool.close()
    assert all(job is not None and job.function == TASK for job in jobs)
    kwargs = [job.kwargs or {} for job in jobs if job]
    assert [k["run_id"] for k in kwargs] == ids
    assert [k["request_id"] for k in kwargs] == [f"batch-{n}" for n in range(40)]


async def _relay_everything(pool: asyncpg.Pool, queue: ResilientRedisQueue,
                            settings: Settings) -> None:
    # Other tests' submissions are saved and never relayed; queue them so these tests count
    # only their own runs.
    while await relay_saved_runs(pool, queue, settings):
        pass


async def test_the_relay_queues_saved_runs_once_redis_is_back(settings: Settings) -> None:
    """Runs a relay could not enqueue stay saved and unqueued, and the next pass takes them."""
    url = settings.database_url.get_secret_value()
    pool = await create_pool(url, 2)
    gone = make_queue(make_settings({"database_url": url,
                                     "redis_url": f"redis://127.0.0.1:{free_port()}/0"}))
    queue = make_queue(settings)
    await queue.connect()
    ids = [uuid.uuid4() for _ in range(3)]
    try:
        await _relay_everything(pool, queue, settings)
        key = await find_key(pool, hash_key(await new_key(settings, "queue-gone")))
        assert key is not None
        await insert_runs(pool, [NewRun(i, key["id"], "Where did the queue go?", 3, {},
                                        "lost-1", {"traceparent": "00-ab-cd-01"})
                                 for i in ids])
        with pytest.raises(redis.ConnectionError):
            await relay_saved_runs(pool, gone, settings)
        unqueued = await pool.fetch("SELECT id FROM research_runs WHERE id = ANY($1) AND "
                                    "enqueued_at IS NULL AND status = 'queued'", ids)
        assert len(unqueued) == 3, "a failed pass leaves the runs for the next"
        assert await relay_saved_runs(pool, queue, settings) == 3
        assert await relay_saved_runs(pool, queue, settings) == 0
        jobs = await asyncio.gather(*(queue.job(str(i)) for i in ids))
    finally:
        await queue.disconnect()
        await pool.close()
    assert all(job is not None and job.function == TASK for job in jobs)
    assert [(job.kwargs or {})["trace_context"] for job in jobs if job] == [
        {"traceparent": "00-ab-cd-01"}] * 3


async def test_concurrent_relays_claim_each_run_once(settings: Settings) -> None:
    url = settings.database_url.get_secret_value()
    pool = await create_pool(url, 4)
    queue = make_queue(settings)
    await queue.connect()
    try:
        await _relay_everything(pool, queue, settings)
        key = await find_key(pool, hash_key(await new_key(settings, "relays")))
        assert key is not None
        await insert_runs(pool, [NewRun(uuid.uuid4(), key["id"], "Who takes me?", 3, {}, None)
                                 for _ in range(300)])
        moved = await asyncio.gather(*(relay_saved_runs(pool, queue, settings, limit=200)
                                       for _ in range(3)))
    finally:
        await queue.disconnect()
        await pool.close()
    assert sum(moved) == 300 and max(moved) <= 200


async def test_a_running_relay_is_woken_by_the_commit(settings: Settings,
                                                      auth: dict[str, str]) -> None:
    url = settings.database_url.get_secret_value()
    pool = await create_pool(url, 2)
    queue = make_queue(settings)
    await queue.connect()
    # Polling once a minute: only the notification can wake it within the test's bound.
    relay = Relay(pool, queue, settings, poll_seconds=60)
    task = asyncio.create_task(relay.run())
    try:
        await _relay_everything(pool, queue, settings)
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
        await pool.close()


async def test_a_relay_that_cannot_listen_says_so_once_then_once_more_when_it_can(
        servers: dict[str, str], settings: Settings) -> None:
    pool = await create_pool(settings.database_url.get_secret_value(), 2)
    queue = make_queue(settings)
    await queue.connect()
    # The passes use the pool; only the LISTEN connection goes to a port nobody serves.
    unreachable = make_settings(
        servers, database_url=f"postgresql://agent@127.0.0.1:{free_port()}/agent")
    relay = Relay(pool, queue, unreachable, poll_seconds=0.01)
    configure_logging(settings.log_level)  # as the worker does when it starts
    logger = logging.getLogger("agent_service.jobs.relay")
    collected, level = Collected(), logger.level
    logger.addHandler(collected)
    logger.setLevel(logging.INFO)  # the suite's settings log warnings only
    task = asyncio.create_task(relay.run())
    try:
        for _ in range(1000):
            if relay.listens.failures >= 3:
                break
            await asyncio.sleep(0.01)
        assert relay.listens.failures >= 3 and not relay.listening.is_set()
        relay.settings = settings
        await asyncio.wait_for(relay.listening.wait(), 10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        logger.removeHandler(collected)
        logger.setLevel(level)
        await queue.disconnect()
        await pool.close()
    said = [(e["event"], e.get("failed_attempts")) for e in collected.events]
    assert said[0] == ("relay cannot listen; polling until it can", None)
    assert said.count(said[0]) == 1
    [(_, attempts)] = [s for s in said if s[0] == "relay listening again"]
    assert attempts is not None and attempts >= 3


async def test_more_orphans_than_a_reaper_page_are_all_handed_back(settings: Settings) -> None:
    url = settings.database_url.get_secret_value()
    pool = await create_pool(url, 2)
    ids = [uuid.uuid4() for _ in range(101)]
    try:
        key = await find_key(pool, hash_key(await new_key(settings, "orphans")))
        assert key is not None
        await insert_runs(pool, [NewRun(i, key["id"], "Who picks me up?", 3, {}, None)
                                 for i in ids])
        # Queued long ago and older than any other test's runs, so these are the first the
        # reaper pages through.
        await pool.execute("UPDATE research_runs SET created_at = now() - interval '2 hours', "
                           "enqueued_at = now() - interval '2 hours' WHERE id = ANY($1)", ids)
    finally:
        await pool.close()
    engine = make_engine(url)
    client = redis.from_url(settings.redis_url.get_secret_value())
    queue = make_queue(settings)
    await queue.connect()
    passes: list[set[str]] = []
    try:
        for _ in range(2):
            await client.delete(REAPER_LOCK)
            passes.append(set((await reap(make_sessionmaker(engine), client, queue,
                                          settings)).requeued) & set(map(str, ids)))
    finally:
        await queue.disconnect()
        await client.aclose()
        await engine.dispose()
    # A page of 100, then the one left: a run just handed back is not handed back again.
    assert [len(p) for p in passes] == [100, 1]
    assert passes[0] | passes[1] == set(map(str, ids))


async def test_concurrent_reads_answer_each_their_own_run(settings: Settings,
                                                          auth: dict[str, str]) -> None:
    async with api_client(settings) as http:
        ids = [(await http.post("/api/v1/research", json={**QUESTION, "question": f"Q{n}?x"},
                                headers=auth)).json()["id"] for n in range(5)]
        missing = str(uuid.uuid4())
        reads = await asyncio.gather(*(http.get(f"/api/v1/research/{i}", headers=auth)
                                       for i in [*ids, missing, *ids]))
    assert [r.status_code for r in reads] == [200] * 5 + [404] + [200] * 5
    assert [r.json()["question"] for r in reads[:5]] == [f"Q{n}?x" for n in range(5)]
    assert [r.json()["id"] for r in reads[6:]] == ids



async def test_events_of_concurrent_runs_are_stored_published_and_beat(
        settings: Settings, auth: dict[str, str]) -> None:
    async with api_client(settings) as http:
        ids = [(await http.post("/api/v1/research", json=QUESTION, headers=auth)).json()["id"]
               for _ in range(4)]
        await http.post(f"/api/v1/research/{ids[3]}/cancel", headers=auth)
    url = settings.database_url.get_secret_value()
    pool = await create_pool(url, 2, durable=False)
    client = redis.from_url(settings.redis_url.get_secret_value())
    pubsub = client.pubsub()
    await pubsub.subscribe(*(channel(i) for i in ids))
    log = EventLog(pool, client)
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
        rows = await pool.fetch("SELECT e.id, e.run_id::text, e.type, e.data, "
                                "r.heartbeat_at IS NOT NULL AS beat FROM run_events e "
                                "JOIN research_runs r ON r.id = e.run_id "
                                "WHERE e.type <> 'cancelled' ORDER BY e.id")
    finally:
        await log.drain()
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()
        await pool.close()
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


async def test_a_batch_enqueues_after_redis_forgot_the_script(settings: Settings) -> None:
    queue = make_queue(settings)
    await queue.connect()
    try:
        await queue.enqueue_many([run_job(settings, str(uuid.uuid4()), "first")])
        await queue.redis.script_flush()  # as after a Redis restart or failover
        run_ids = [str(uuid.uuid4()) for _ in range(3)]
        await queue.enqueue_many([run_job(settings, run_id, "again") for run_id in run_ids])
        jobs = await queue.jobs(run_ids)
    finally:
        await queue.disconnect()
    assert [job.kwargs["run_id"] if job and job.kwargs else None for job in jobs] == run_ids
    assert {job.status for job in jobs if job} == {Status.QUEUED}
