"""Restore a `pg_dump --format=custom` file (the local stack's backup CronJob makes them) into
a new, empty database, then verify it."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from sqlalchemy import text

from agent_service.db.session import make_engine
from agent_service.restore.verify import verify

_USER_TABLES = text("SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")


class RestoreError(Exception):
    """The restore could not be done; the message says why and nothing was overwritten."""


def libpq_target(database_url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and the environment carrying the password: a password
    on pg_restore's command line would show in every process listing."""
    parts = urlsplit(database_url)
    env = {"PGPASSWORD": unquote(parts.password)} if parts.password else {}
    host = parts.hostname or ""
    netloc = (f"{parts.username}@" if parts.username else "") + host + (
        f":{parts.port}" if parts.port else "")
    return urlunsplit(("postgresql", netloc, parts.path, parts.query, "")), env


async def _user_tables(database_url: str) -> int:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as db:
            return int((await db.execute(_USER_TABLES)).scalar_one())
    finally:
        await engine.dispose()


async def restore_dump(dump: Path, database_url: str, *, jobs: int = 2,
                       pg_restore: str = "pg_restore") -> dict[str, Any]:
    """Restores `dump` into the empty database at `database_url`, verifies it, and reports
    both steps' durations. Refuses a database that already holds tables: a restore never
    writes over data."""
    if not dump.is_file():
        raise RestoreError(f"{dump}: no such dump file")
    existing = await _user_tables(database_url)
    if existing:
        raise RestoreError(f"the target database already holds {existing} table(s): restore "
                           "into a new, empty database (createdb) and switch to it")
    url, env = libpq_target(database_url)
    started = time.perf_counter()
    result = subprocess.run(  # noqa: S603 - a fixed program with arguments, no shell
        [pg_restore, "--no-owner", "--no-privileges", "--exit-on-error", f"--jobs={jobs}",
         f"--dbname={url}", str(dump)],
        env={**os.environ, **env}, capture_output=True, text=True, check=False)
    restore_seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RestoreError(f"pg_restore exited {result.returncode}: "
                           f"{result.stderr.strip()[-2000:]}")
    checked = await verify(database_url)
    return {"source": "dump", "dump": str(dump), "dump_bytes": dump.stat().st_size,
            "restore_seconds": round(restore_seconds, 3), **checked,
            "total_seconds": round(restore_seconds + checked["verify_seconds"], 3)}
