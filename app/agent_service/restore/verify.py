"""Is a restored database whole? Schema at the latest migration, every table's rows counted,
and the newest run read back with the API's own query and response model."""

from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from agent_service.api.routes.research import run_detail
from agent_service.db import runs
from agent_service.db.base import Base
from agent_service.db.migrate import head_revision
from agent_service.db.runs import RUNS
from agent_service.db.session import make_engine

_NEWEST_RUN = select(RUNS.c.id, RUNS.c.api_key_id).order_by(RUNS.c.created_at.desc()).limit(1)


def _tables() -> list[Table]:
    return list(Base.metadata.sorted_tables)


async def _newest_run(db: AsyncConnection) -> tuple[dict[str, Any] | None, str | None]:
    """(the newest run as the API returns it, or None; the problem reading it, or None)."""
    newest = (await db.execute(_NEWEST_RUN)).first()
    if newest is None:
        return None, None
    run = await runs.owned(db, newest.id, newest.api_key_id)
    if run is None:
        return None, f"run {newest.id} cannot be read through the API's query"
    try:
        return run_detail(run).model_dump(mode="json"), None
    except ValidationError as error:
        first = error.errors()[0]
        return None, (f"run {newest.id} does not fit the API's model: {first['msg']} at "
                      f"{'.'.join(map(str, first['loc']))}")


async def verify(database_url: str) -> dict[str, Any]:
    """What the database holds; `ok` is false, with the `problems`, when it is not whole."""
    started = time.perf_counter()
    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as db:
            revision = (await db.execute(text(
                "SELECT version_num FROM alembic_version"))).scalar_one_or_none()
            rows = {table.name: int((await db.execute(
                select(func.count()).select_from(table))).scalar_one()) for table in _tables()}
            sample, unreadable = await _newest_run(db)
    finally:
        await engine.dispose()
    head = head_revision()
    problems = [f"schema is at {revision}, the service's latest migration is {head}"] \
        if revision != head else []
    problems += [unreadable] if unreadable else []
    return {"ok": not problems, "problems": problems, "revision": revision, "head": head,
            "rows": rows, "sample_run": None if sample is None else {
                "id": sample["id"], "status": sample["status"],
                "created_at": sample["created_at"]},
            "verify_seconds": round(time.perf_counter() - started, 3)}
