"""Runs end to end through the real queue and worker: results, events, idempotent completion,
cancellation, budgets, and worker processes killed or stopped mid-run."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from devtools.servers import APP_DIR, service_env
from llm_server import Behaviour, FakeLLM, fake_llm
from sqlalchemy import func, select
from support import api_client, database, make_settings, running_worker, wait_for_status

from agent_service.agent.search import search
from agent_service.core.config import Settings
from agent_service.db import runs
from agent_service.db.models import DEFAULT_TENANT, RunEvent
from agent_service.db.session import make_engine, make_sessionmaker
from agent_service.jobs.queue import TASK, make_queue

pytestmark = pytest.mark.anyio
DOCUMENTS = [
    {"title": "Rolling updates", "source": "https://kubernetes.io/docs/rolling",
     "content": "A Deployment performs a rolling update by replacing pods gradually. With "
                "maxUnavailable set to 0 the rolling update never drops below the desired "
                "capacity. maxSurge controls how many extra pods may start."},
    {"title": "Readiness probes", "source": "https://kubernetes.io/docs/probes",
     "content": "Readiness probes decide when a pod receives traffic. During a rolling update "
                "a new pod only replaces an old one after its readiness probe passes."},
    {"title": "Cooking pasta", "source": None,
     "content": "Boil salted water and cook the pasta until al dente."},
]
QUESTION = "How does a rolling update keep capacity and use readiness probes?"


async def ingest(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for document in DOCUMENTS:
        assert (await client.post("/api/v1/documents", json=document,
                                  headers=auth)).status_code == 201


async def events_of(settings: Settings, run_id: str) -> list[str]:
    engine = make_engine(settings.database_url.get_secret_value(), pool_size=1)
    async with make_sessionmaker(engine)() as session:
        rows = (await session.execute(select(RunEvent.type).where(
            RunEvent.run_id == run_id).order_by(RunEvent.id))).scalars().all()
    await engine.dispose()
    return list(rows)


async def test_a_run_is_answered_with_citations(client: httpx.AsyncClient, auth: dict[str, str],
                                                settings: Settings, worker: Any) -> None:
    await ingest(client, auth)
    submitted = await client.post("/api/v1/research", headers=auth,
                                  json={"question": QUESTION, "max_sources": 2})
    run = await wait_for_status(client, auth, submitted.json()["id"])
    assert run["status"] == "succeeded", run
    assert {s["title"] for s in run["sources"]} == {"Rolling updates", "Readiness probes"}
    assert "[1]" in run["answer"] and "[2]" in run["answer"]
    assert "maxUnavailable" in run["answer"]
    assert run["usage"]["prompt_tokens"] > 0 and run["usage"]["completion_tokens"] > 0
    assert run["usage"]["cost_usd"] == "0.000000"
    assert run["attempts"] == 1 and run["started_at"] and run["finished_at"]
    kinds = await events_of(settings, run["id"])
    assert kinds[0] == "started" and kinds[-1] == "completed"
    assert kinds.index("plan") < kinds.index("search") < kinds.index("read") < \
        kinds.index("answer")


async def test_no_matching_document_still_finishes_honestly(
        client: httpx.AsyncClient, auth: dict[str, str], worker: Any) -> None:
    submitted = await client.post("/api/v1/research", headers=auth,
                                  json={"question": "What is the airspeed of a swallow?"})
    run = await wait_for_status(client, auth, submitted.json()["id"])
    assert run["status"] == "succeeded"
    assert run["sources"] == []
    assert run["answer"] == "The knowledge base has no document that matches this question."


async def test_a_second_delivery_never_writes_a_second_result(
        client: httpx.AsyncClient, auth: dict[str, str], settings: Settings,
        worker: Any) -> None:
    await ingest(client, auth)
    run_id = (await client.post("/api/v1/research", headers=auth,
                                json={"question": QUESTION})).json()["id"]
    first = await wait_for_status(client, auth, run_id)
    # Deliver the same run again, as a redelivery after a lost acknowledgement would.
    queue = make_queue(settings)
    await queue.connect()
    job = await queue.enqueue(TASK, key=f"{run_id}-again", run_id=run_id, timeout=30)
    assert job is not None
    await job.refresh(10)
    await queue.disconnect()
    assert job.result == "skipped"
    second = (await client.get(f"/api/v1/research/{run_id}", headers=auth)).json()
    assert second["answer"] == first["answer"] and second["finished_at"] == first["finished_at"]
    assert (await events_of(settings, run_id)).count("completed") == 1


async def test_complete_is_written_once_even_when_racing(settings: Settings,
                                                         client: httpx.AsyncClient,
                                                         auth: dict[str, str]) -> None:
    run_id = (await client.post("/api/v1/research", headers=auth,
                                json={"question": QUESTION})).json()["id"]
    async with database(settings) as engine:
        async with engine.begin() as db:
            assert await runs.claim(db, run_id) is not None

        async def finish(answer: str) -> bool:
            async with engine.begin() as db:
                return await runs.complete(db, run_id, answer=answer, sources=[],
                                           prompt_tokens=1, completion_tokens=1,
                                           cost_usd=Decimal(0))

        results = await asyncio.gather(*(finish(f"answer {n}") for n in range(4)))
    assert sorted(results) == [False, False, False, True]


async def test_cancelling_a_running_run_stops_it(servers: dict[str, str], settings: Settings,
                                                 auth: dict[str, str]) -> None:
    release = threading.Event()
    with fake_llm() as llm:
        llm.script = [Behaviour(wait_for=release)]
        slow = make_settings(servers, llm_providers=["openai"], openai_api_key="sk-test",
                             openai_base_url=f"{llm.base_url}/v1", llm_max_attempts=1)
        async with api_client(slow) as client, running_worker(slow):
            await ingest(client, auth)
            run_id = (await client.post("/api/v1/research", headers=auth,
                                        json={"question": QUESTION})).json()["id"]
            # Cancel while the first LLM call is in flight.
            await wait_until(lambda: llm.count("/chat/completions") >= 1, 30)
            cancelled = await client.post(f"/api/v1/research/{run_id}/cancel", headers=auth)
            assert cancelled.json()["status"] == "cancelled"
            release.set()
            await asyncio.sleep(0.5)
            run = (await client.get(f"/api/v1/research/{run_id}", headers=auth)).json()
        assert run["status"] == "cancelled" and run["answer"] is None
        assert llm.count("/chat/completions") == 1, "no LLM call after the cancel"


async def test_a_run_over_its_token_budget_fails_with_the_reason(
        servers: dict[str, str], settings: Settings, auth: dict[str, str]) -> None:
    frugal = make_settings(servers, agent_max_tokens=100)
    long_question = "rolling update " * 60
    async with api_client(frugal) as client, running_worker(frugal):
        run_id = (await client.post("/api/v1/research", headers=auth,
                                    json={"question": long_question})).json()["id"]
        run = await wait_for_status(client, auth, run_id)
    assert run["status"] == "failed"
    assert run["error"].startswith("token budget of 100 exceeded")


async def test_provider_outage_retries_the_job_then_fails_it(
        servers: dict[str, str], settings: Settings, auth: dict[str, str]) -> None:
    with fake_llm() as llm:
        llm.script = [Behaviour(status=500)] * 10
        failing = make_settings(servers, llm_providers=["openai"], openai_api_key="sk-test",
                                openai_base_url=f"{llm.base_url}/v1", llm_max_attempts=1,
                                job_retries=2, llm_failure_threshold=100)
        async with api_client(failing) as client, running_worker(failing):
            run_id = (await client.post("/api/v1/research", headers=auth,
                                        json={"question": QUESTION})).json()["id"]
            run = await wait_for_status(client, auth, run_id)
    assert run["status"] == "failed"
    assert run["attempts"] == 2
    assert run["error"].startswith("LLM providers failed: openai: http_500")


# --- real worker processes ------------------------------------------------------------------

@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with fake_llm() as server:
        yield server


def start_worker(settings: Settings, llm: FakeLLM, **env: str) -> subprocess.Popen[bytes]:
    environment = service_env(
        settings.database_url.get_secret_value(), settings.redis_url.get_secret_value(),
        LLM_PROVIDERS="openai", OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=f"{llm.base_url}/v1",
        LLM_MAX_ATTEMPTS="1", WORKER_METRICS_PORT="0", JOB_HEARTBEAT_SECONDS="2",
        SWEEP_INTERVAL_SECONDS="1", LOG_LEVEL="INFO", PYTHONUNBUFFERED="1", **env)
    return subprocess.Popen([sys.executable, "-m", "agent_service", "worker"], env=environment,
                            cwd=APP_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> str:
    """Waits briefly for an exit already asked for, then kills; returns everything logged."""
    try:
        output, _ = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate(timeout=15)
    return output.decode(errors="replace")


async def wait_until(predicate: Any, seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {seconds}s")
        await asyncio.sleep(0.05)


async def submit_with_hanging_llm(client: httpx.AsyncClient, auth: dict[str, str],
                                  llm: FakeLLM, gate: threading.Event) -> str:
    """Submits a run whose first LLM call hangs until `gate` is set."""
    llm.script = [Behaviour(wait_for=gate)]
    await ingest(client, auth)
    response = await client.post("/api/v1/research", headers=auth, json={"question": QUESTION})
    return str(response.json()["id"])


@pytest.mark.slow
async def test_a_worker_killed_mid_run_loses_nothing(client: httpx.AsyncClient,
                                                     auth: dict[str, str], settings: Settings,
                                                     llm: FakeLLM) -> None:
    never = threading.Event()
    # First attempt: the plan call hangs, as a wedged or dying worker would.
    run_id = await submit_with_hanging_llm(client, auth, llm, never)
    first = start_worker(settings, llm)
    try:
        await wait_until(lambda: llm.count("/chat/completions") >= 1, 30)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = start_worker(settings, llm)
        try:
            run = await wait_for_status(client, auth, run_id, seconds=60)
        finally:
            second.send_signal(signal.SIGTERM)
            log = stop(second)
    finally:
        never.set()
        stop(first)
    assert run["status"] == "succeeded", (run, log)
    assert run["attempts"] == 2
    assert (await events_of(settings, run_id)).count("completed") == 1


@pytest.mark.slow
async def test_sigterm_lets_the_running_job_finish(client: httpx.AsyncClient,
                                                   auth: dict[str, str], settings: Settings,
                                                   llm: FakeLLM) -> None:
    release = threading.Event()
    run_id = await submit_with_hanging_llm(client, auth, llm, release)
    worker = start_worker(settings, llm, SHUTDOWN_GRACE_SECONDS="20")
    try:
        await wait_until(lambda: llm.count("/chat/completions") >= 1, 30)
        worker.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        assert worker.poll() is None, "the worker waits for its in-flight job"
        release.set()
        await asyncio.get_running_loop().run_in_executor(None, worker.wait, 30)
    finally:
        log = stop(worker)
    assert worker.returncode == 0, log
    run = (await client.get(f"/api/v1/research/{run_id}", headers=auth)).json()
    assert run["status"] == "succeeded" and run["attempts"] == 1, (run, log)
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line.get("message") == "run succeeded" and line.get("run_id") == run_id
               for line in lines), "worker logs carry the run id"


async def test_run_events_are_counted_per_run(settings: Settings) -> None:
    engine = make_engine(settings.database_url.get_secret_value(), pool_size=1)
    async with make_sessionmaker(engine)() as session:
        assert (await session.execute(select(func.count()).select_from(RunEvent))).scalar() == 0
    await engine.dispose()


REQUIRED_METRICS = (
    "http_requests_total", "http_request_duration_seconds", "research_runs_total",
    "research_run_duration_seconds", "research_queue_depth", "research_queue_oldest_age_seconds",
    "llm_calls_total", "llm_tokens_total", "llm_errors_total", "llm_request_duration_seconds",
    "agent_cost_usd_total", "llm_cache_hits_total", "llm_failovers_total", "dependency_up")


async def test_metrics_cover_requests_runs_queue_and_llm(
        client: httpx.AsyncClient, auth: dict[str, str], worker: Any) -> None:
    await ingest(client, auth)
    assert (await client.get("/ready")).status_code == 200
    for _ in range(2):  # the second identical run is answered from the LLM cache
        run_id = (await client.post("/api/v1/research", headers=auth,
                                    json={"question": QUESTION})).json()["id"]
        assert (await wait_for_status(client, auth, run_id))["status"] == "succeeded"
    text = (await client.get("/metrics")).text
    for name in REQUIRED_METRICS:
        assert f"# TYPE {name} " in text, name
    assert 'research_runs_total{status="succeeded"}' in text
    assert 'llm_calls_total{model="offline-extractive-v1",outcome="success",provider="offline"}' \
        in text
    assert 'llm_cache_hits_total{model="offline-extractive-v1",provider="offline"}' in text


async def test_search_ranks_by_matching_words(client: httpx.AsyncClient,
                                             auth: dict[str, str], settings: Settings) -> None:
    await ingest(client, auth)
    async with database(settings) as engine, engine.connect() as db:
        results = [await search(db, query, DEFAULT_TENANT, limit=1)
                   for query in ["readiness probe traffic", "?!", "pasta", "zeppelin",
                                 "rolling update"]]
        both = await search(db, "rolling update", DEFAULT_TENANT, limit=5)
        elsewhere = await search(db, "rolling update", "another-tenant", limit=5)
    assert [[hit.title for hit in found] for found in results] == [
        ["Readiness probes"], [], ["Cooking pasta"], [], ["Rolling updates"]]
    assert [hit.title for hit in both] == ["Rolling updates", "Readiness probes"]
    assert both[0].rank > both[1].rank
    assert elsewhere == [], "another tenant's documents are not searched"
