"""Fixtures: one real Postgres and one real Redis per session, a clean slate per test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis as sync_redis
from sqlalchemy import text

from agent_service.auth.keys import create_key
from agent_service.core.config import Settings, get_settings
from agent_service.db.migrate import migrate
from agent_service.db.session import make_engine, make_sessionmaker
from agent_service.jobs.worker import build_worker
from agent_service.main import create_app
from devtools.servers import postgres_server, redis_server

TABLES = "run_events, research_runs, documents, api_keys"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def servers() -> Iterator[dict[str, str]]:
    with postgres_server() as database_url, redis_server() as redis_url:
        migrate(database_url, timeout_seconds=30)
        yield {"database_url": database_url, "redis_url": redis_url}


def make_settings(servers: dict[str, str], **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "production", "database_url": servers["database_url"],
        "redis_url": servers["redis_url"], "rate_limit": "100000/minute",
        "worker_metrics_port": 0, "job_timeout_seconds": 30, "job_heartbeat_seconds": 5,
        "sweep_interval_seconds": 1, "shutdown_grace_seconds": 5,
        "llm_providers": ["offline"], "log_level": "WARNING"}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(servers: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Production settings pointing at the test servers, with a clean database and Redis."""
    current = make_settings(servers)
    # Processes the tests start read the same settings from the environment.
    for name in ("database_url", "redis_url", "rate_limit", "llm_providers", "environment"):
        value = getattr(current, name)
        value = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        monkeypatch.setenv(name.upper(), ",".join(value) if isinstance(value, list) else value)
    get_settings.cache_clear()
    _reset(servers)
    yield current
    get_settings.cache_clear()


def _reset(servers: dict[str, str]) -> None:
    async def truncate() -> None:
        engine = make_engine(servers["database_url"], pool_size=1)
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {TABLES} CASCADE"))
        await engine.dispose()

    asyncio.run(truncate())
    with sync_redis.Redis.from_url(servers["redis_url"]) as client:
        client.flushdb()


@contextlib.asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     timeout=30) as http:
            yield http


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings) as http:
        yield http


async def new_key(settings: Settings, name: str = "tests") -> str:
    engine = make_engine(settings.database_url.get_secret_value(), pool_size=1)
    async with make_sessionmaker(engine)() as session:
        key, _ = await create_key(session, name)
    await engine.dispose()
    return key


@pytest.fixture
async def api_key(settings: Settings) -> str:
    return await new_key(settings)


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


@contextlib.asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[Any]:
    """An in-process SAQ worker on the test loop; stopped (drained) on exit."""
    worker = build_worker(settings)
    worker.SIGNALS = []  # the test runner owns the signals
    worker.context["settings"] = settings
    await worker.queue.connect()
    task = asyncio.create_task(worker.start())
    try:
        yield worker
    finally:
        await worker.stop()
        await asyncio.wait_for(task, 30)
        await worker.queue.disconnect()


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Any]:
    async with running_worker(settings) as running:
        yield running


async def wait_for_status(client: httpx.AsyncClient, auth: dict[str, str], run_id: str,
                          statuses: tuple[str, ...] = ("succeeded", "failed", "cancelled"),
                          seconds: float = 30) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        body: dict[str, Any] = (await client.get(f"/api/v1/research/{run_id}",
                                                 headers=auth)).json()
        if body["status"] in statuses:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run {run_id} still {body['status']} after {seconds}s")
        await asyncio.sleep(0.05)
