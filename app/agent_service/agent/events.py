"""Run events: written to Postgres (the record) and published on Redis (the live stream)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

import asyncpg
import redis.asyncio as redis

from agent_service.core.batching import MicroBatcher

# One statement for any number of events: each event, and for those with a heartbeat the run's
# liveness mark and status (so a worker learns of a cancel for free). Ids are drawn from the
# table's sequence in the CTE so each input row gets its own id back; a run has at most one
# event in a batch (it awaits each), so its ids still grow in the order it emitted them. An
# UPDATE that matches no row is harmless.
_RECORD = """
WITH new AS (
    SELECT nextval(pg_get_serial_sequence('run_events', 'id')) AS id, e.*
    FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::bool[]) WITH ORDINALITY
        AS e (run_id, type, data, beat, n)
), event AS (
    INSERT INTO run_events (id, run_id, type, data) SELECT id, run_id, type, data FROM new
), beat AS (
    UPDATE research_runs SET heartbeat_at = now()
    WHERE id IN (SELECT run_id FROM new WHERE beat) RETURNING id, status
)
SELECT new.id, beat.status FROM new LEFT JOIN beat ON new.beat AND beat.id = new.run_id
ORDER BY new.n
"""


def channel(run_id: str) -> str:
    return f"research:{run_id}:events"


@dataclass(frozen=True)
class Event:
    run_id: str
    kind: str
    data: dict[str, Any]
    heartbeat: bool = False


async def record_events(pool: asyncpg.Pool, client: redis.Redis,
                        events: list[Event]) -> list[str | None]:
    """Stores, then publishes, the events: one statement and one Redis pipeline. Returns, per
    event, the run's status for a heartbeat, else None.

    Publishing follows the commit, so a live stream never announces an event the table lacks.
    Workers pass a pool whose sessions run with synchronous_commit off (db/hot_path.py):
    events are progress telemetry, and not waiting for the WAL flush is worth losing the last
    few of them in a database crash. Results and state changes still commit durably.
    """
    rows = await pool.fetch(
        _RECORD, [uuid.UUID(e.run_id) for e in events], [e.kind for e in events],
        [e.data for e in events], [e.heartbeat for e in events])
    async with client.pipeline(transaction=False) as pipe:
        for event, row in zip(events, rows, strict=True):
            pipe.publish(channel(event.run_id), json.dumps(
                {"id": row["id"], "type": event.kind, "data": event.data}))
        await pipe.execute()
    return [row["status"] for row in rows]


async def record_event(pool: asyncpg.Pool, client: redis.Redis, run_id: str, kind: str,
                       data: dict[str, Any], heartbeat: bool = False) -> str | None:
    """One event (`record_events`), for callers that emit rarely, such as a cancel."""
    return (await record_events(pool, client, [Event(run_id, kind, data, heartbeat)]))[0]


class EventLog:
    """`record_events` for a worker's concurrent runs, group-committed (core/batching.py):
    events are most of a run's round trips, and the ones that concurrent runs emit together
    share one statement and one pipeline."""

    def __init__(self, pool: asyncpg.Pool, client: redis.Redis) -> None:
        self._batches: MicroBatcher[Event, str | None] = MicroBatcher(
            partial(record_events, pool, client))

    async def record(self, run_id: str, kind: str, data: dict[str, Any],
                     heartbeat: bool = False) -> str | None:
        """Stores and publishes one event; with `heartbeat`, returns the run's status."""
        return await self._batches.submit(Event(run_id, kind, data, heartbeat))

    async def drain(self) -> None:
        await self._batches.drain()
