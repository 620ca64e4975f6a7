"""Migrations: the head revision builds exactly the schema the models describe, and readiness
refuses a database that lags behind it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from agent_service.core.config import Settings
from agent_service.db.base import Base
from agent_service.db.migrate import head_revision, migrate
from agent_service.db.session import make_engine

pytestmark = pytest.mark.anyio


async def test_migrated_schema_matches_the_models(settings: Settings) -> None:
    engine = make_engine(settings.database_url.get_secret_value(), pool_size=1)
    async with engine.connect() as connection:
        differences: list[Any] = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
    await engine.dispose()
    assert differences == []


async def test_migrate_is_idempotent(settings: Settings) -> None:
    url = settings.database_url.get_secret_value()
    engine = make_engine(url, pool_size=1)

    async def state() -> tuple[list[str], int]:
        async with engine.connect() as connection:
            versions = (await connection.execute(
                text("SELECT version_num FROM alembic_version"))).scalars().all()
            tables = (await connection.execute(text(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))).scalar_one()
        return list(versions), int(tables)

    try:
        await asyncio.to_thread(migrate, url, 10)
        first = await state()
        await asyncio.to_thread(migrate, url, 10)
        # A second run at head changes nothing: one version row, at head, and the same tables.
        assert await state() == first
        assert first[0] == [head_revision()]
    finally:
        await engine.dispose()


async def test_not_ready_while_the_schema_lags(client: httpx.AsyncClient,
                                               settings: Settings) -> None:
    engine = make_engine(settings.database_url.get_secret_value(), pool_size=1)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    try:
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.json()["checks"]["postgres"] == (
            f"schema at old, expected {head_revision()}")
    finally:
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = :v"),
                                     {"v": head_revision()})
        await engine.dispose()
