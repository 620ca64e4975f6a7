"""Run events: written to Postgres (the record) and published on Redis (the live stream)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis.asyncio as redis
from sqlalchemy import func, insert, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agent_service.db.models import ResearchRun, RunEvent


def channel(run_id: str) -> str:
    return f"research:{run_id}:events"


async def record_event(sessions: async_sessionmaker[AsyncSession], client: redis.Redis,
                       run_id: str, kind: str, data: dict[str, Any],
                       heartbeat: bool = False) -> str | None:
    """Stores and publishes one event. With `heartbeat`, the same transaction also marks the
    running run alive and returns its status, so a worker learns of a cancel for free."""
    status = None
    async with sessions() as session:
        # Events are progress telemetry: not waiting for the WAL flush is worth losing the last
        # few of them in a database crash. Results and state changes still commit durably.
        await session.execute(text("SET LOCAL synchronous_commit = off"))
        event_id = (await session.execute(
            insert(RunEvent).values(run_id=uuid.UUID(run_id), type=kind, data=data)
            .returning(RunEvent.id))).scalar_one()
        if heartbeat:
            status = (await session.execute(
                update(ResearchRun).where(ResearchRun.id == uuid.UUID(run_id))
                .values(heartbeat_at=func.now()).returning(ResearchRun.status))).scalar()
        await session.commit()
    await client.publish(channel(run_id), json.dumps({"id": event_id, "type": kind,
                                                      "data": data}))
    return status
