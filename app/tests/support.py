"""Helpers the service tests share: settings for the test servers, an API client, a worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_service.auth.keys import create_key, hash_key
from agent_service.core.config import Settings
from agent_service.db import runs
from agent_service.db.models import DEFAULT_SCOPES, DEFAULT_TENANT, ApiKey
from agent_service.db.session import make_engine, make_sessionmaker
from agent_service.jobs.worker import build_worker
from agent_service.main import create_app


class Collected(logging.Handler):
    """Keeps the structlog events a stdlib logger receives, as dicts, for assertions."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict):  # structlog's event, before rendering
            self.events.append(record.msg)


def make_settings(servers: dict[str, str], **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "production", "database_url": servers["database_url"],
        "redis_url": servers["redis_url"], "rate_limit": "100000/minute",
        "worker_metrics_port": 0, "job_timeout_seconds": 30, "job_heartbeat_seconds": 5,
        "sweep_interval_seconds": 1, "shutdown_grace_seconds": 5,
        "llm_providers": ["offline"], "log_level": "WARNING"}
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     timeout=30) as http:
            yield http


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine on the test database, disposed on exit."""
    engine = make_engine(settings.database_url.get_secret_value(), pool_size=4)
    try:
        yield engine
    finally:
        await engine.dispose()


async def new_key(settings: Settings, name: str = "tests", tenant: str = DEFAULT_TENANT,
                  scopes: Sequence[str] = DEFAULT_SCOPES) -> str:
    async with database(settings) as engine, make_sessionmaker(engine)() as session:
        key, _ = await create_key(session, name, tenant, scopes)
    return key


async def key_id(engine: AsyncEngine, key: str) -> uuid.UUID:
    async with engine.connect() as db:
        found = await db.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(key)))
    assert found is not None
    return found


async def save_runs(engine: AsyncEngine, api_key_id: uuid.UUID,
                    ids: Sequence[uuid.UUID], question: str = "Who picks me up?",
                    request_id: str | None = None,
                    trace_context: dict[str, str] | None = None) -> None:
    """Saves queued runs as the API does (db/runs.py)."""
    async with engine.begin() as db:
        await runs.save(db, [runs.NewRun(run_id, api_key_id, question, 3, {}, request_id,
                                         trace_context) for run_id in ids])


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
