"""Run events: written to Postgres (the record) and published on Redis (the live stream)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

import redis.asyncio as redis
import structlog
from sqlalchemy import func, insert, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_service.core.batching import MicroBatcher
from agent_service.core.outage import is_outage
from agent_service.db.models import ResearchRun, RunEvent

log = structlog.get_logger(__name__)


def channel(run_id: str) -> str:
    return f"research:{run_id}:events"


@dataclass(frozen=True)
class Event:
    run_id: str
    kind: str
    data: dict[str, Any]
    heartbeat: bool = False


async def record_events(engine: AsyncEngine, client: redis.Redis,
                        events: list[Event]) -> list[str | None]:
    """Stores, then publishes, the events: one transaction and one Redis pipeline. Returns, per
    event, the run's status for a heartbeat, else None.

    With each event flagged `heartbeat`, the run's liveness mark is touched in the same
    transaction and its status read back, so a worker learns of a cancel for free. Publishing
    follows the commit, so a live stream never announces an event the table lacks. The
    transaction commits without waiting for the WAL flush (synchronous_commit off): events are
    progress telemetry, and not waiting is worth losing the last few of them in a database
    crash. Results and state changes still commit durably.
    """
    beats = list({uuid.UUID(e.run_id) for e in events if e.heartbeat})
    async with engine.begin() as connection:
        await connection.execute(text("SET LOCAL synchronous_commit TO OFF"))
        ids = (await connection.execute(
            insert(RunEvent).returning(RunEvent.id, sort_by_parameter_order=True),
            [{"run_id": uuid.UUID(e.run_id), "type": e.kind, "data": e.data}
             for e in events])).scalars().all()
        statuses: dict[str, str] = {}
        if beats:
            statuses = {str(run_id): status for run_id, status in (await connection.execute(
                update(ResearchRun).where(ResearchRun.id.in_(beats))
                .values(heartbeat_at=func.now())
                .returning(ResearchRun.id, ResearchRun.status))).all()}
    try:
        async with client.pipeline(transaction=False) as pipe:
            for event, event_id in zip(events, ids, strict=True):
                pipe.publish(channel(event.run_id), json.dumps(
                    {"id": event_id, "type": event.kind, "data": event.data}))
            await pipe.execute()
    except Exception as error:
        if not is_outage(error):
            raise
        # Stored is recorded: a client that lost the live stream replays from the table when
        # it reconnects with Last-Event-ID. Raising would store the events a second time.
        log.warning("run events stored but not published: Redis unavailable",
                    events=len(events))
    return [statuses.get(e.run_id) if e.heartbeat else None for e in events]


async def record_event(engine: AsyncEngine, client: redis.Redis, run_id: str, kind: str,
                       data: dict[str, Any], heartbeat: bool = False) -> str | None:
    """One event (`record_events`), for callers that emit rarely, such as a cancel."""
    return (await record_events(engine, client, [Event(run_id, kind, data, heartbeat)]))[0]


class EventLog:
    """`record_events` for a worker's concurrent runs, group-committed (core/batching.py):
    events are most of a run's round trips, and the ones that concurrent runs emit together
    share one statement and one pipeline."""

    def __init__(self, engine: AsyncEngine, client: redis.Redis) -> None:
        self._batches: MicroBatcher[Event, str | None] = MicroBatcher(
            partial(record_events, engine, client))

    async def record(self, run_id: str, kind: str, data: dict[str, Any],
                     heartbeat: bool = False) -> str | None:
        """Stores and publishes one event; with `heartbeat`, returns the run's status."""
        return await self._batches.submit(Event(run_id, kind, data, heartbeat))

    async def drain(self) -> None:
        await self._batches.drain()
