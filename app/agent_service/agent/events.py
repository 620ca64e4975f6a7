"""Run events: written to Postgres (the record) and published on Redis (the live stream)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import redis.asyncio as redis

# One statement, one round trip: the event, and with a heartbeat the run's liveness mark and
# status (so a worker learns of a cancel for free). An UPDATE that matches no row is harmless.
_RECORD = """
WITH event AS (
    INSERT INTO run_events (run_id, type, data) VALUES ($1, $2, $3) RETURNING id
), beat AS (
    UPDATE research_runs SET heartbeat_at = now() WHERE id = $1 AND $4 RETURNING status
)
SELECT (SELECT id FROM event) AS id, (SELECT status FROM beat) AS status
"""


def channel(run_id: str) -> str:
    return f"research:{run_id}:events"


async def record_event(pool: asyncpg.Pool, client: redis.Redis, run_id: str, kind: str,
                       data: dict[str, Any], heartbeat: bool = False) -> str | None:
    """Stores and publishes one event. With `heartbeat`, also marks the running run alive and
    returns its status.

    Workers pass a pool whose sessions run with synchronous_commit off (db/hot_path.py):
    events are progress telemetry, and not waiting for the WAL flush is worth losing the last
    few of them in a database crash. Results and state changes still commit durably.
    """
    row = await pool.fetchrow(_RECORD, uuid.UUID(run_id), kind, data, heartbeat)
    assert row is not None
    await client.publish(channel(run_id), json.dumps({"id": row["id"], "type": kind,
                                                      "data": data}))
    status: str | None = row["status"]
    return status
