"""`agent-service migrate`: wait for Postgres, then bring the schema to the latest revision.

Run once per release by the Kubernetes migration Job; the API and workers never migrate.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from tenacity import AsyncRetrying, stop_after_delay, wait_exponential

from agent_service.db.session import make_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
log = structlog.get_logger(__name__)


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolates %, which URL-encoded passwords contain.
    config.set_main_option("database_url", database_url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head is not None
    return head


async def wait_for_database(database_url: str, timeout_seconds: float) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        async for attempt in AsyncRetrying(stop=stop_after_delay(timeout_seconds),
                                           wait=wait_exponential(max=5), reraise=True):
            with attempt:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


def migrate(database_url: str, timeout_seconds: float = 120) -> None:
    asyncio.run(wait_for_database(database_url, timeout_seconds))
    # Alembic's env.py runs its own event loop, so it is called outside ours.
    command.upgrade(alembic_config(database_url), "head")
    log.info("schema migrated", revision=head_revision())
