"""Migrations: the head revision builds exactly the schema the models describe, and readiness
refuses a database that lags behind it."""

from __future__ import annotations

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


def test_migrate_is_idempotent(settings: Settings) -> None:
    migrate(settings.database_url.get_secret_value(), timeout_seconds=10)
    migrate(settings.database_url.get_secret_value(), timeout_seconds=10)


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
