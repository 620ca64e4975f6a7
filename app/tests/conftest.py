"""Fixtures: one real Postgres and one real Redis per session, a clean slate per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis as sync_redis
from devtools.servers import postgres_server, redis_server
from sqlalchemy import text
from support import api_client, make_settings, new_key, running_worker

from agent_service.core.config import Settings, get_settings
from agent_service.db.migrate import migrate
from agent_service.db.session import make_engine

TABLES = "run_events, research_runs, documents, api_keys"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def servers() -> Iterator[dict[str, str]]:
    with postgres_server() as database_url, redis_server() as redis_url:
        migrate(database_url, timeout_seconds=30)
        yield {"database_url": database_url, "redis_url": redis_url}


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


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings) as http:
        yield http


@pytest.fixture
async def api_key(settings: Settings) -> str:
    return await new_key(settings)


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Any]:
    async with running_worker(settings) as running:
        yield running
