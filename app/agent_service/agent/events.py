"""Run events: written to Postgres (the record) and published on Redis (the live stream)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis.asyncio as redis
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agent_service.db.models import RunEvent


def channel(run_id: str) -> str:
    return f"research:{run_id}:events"


async def record_event(sessions: async_sessionmaker[AsyncSession], client: redis.Redis,
                       run_id: str, kind: str, data: dict[str, Any]) -> int:
    async with sessions() as session:
        event_id = (await session.execute(
            insert(RunEvent).values(run_id=uuid.UUID(run_id), type=kind, data=data)
            .returning(RunEvent.id))).scalar_one()
        await session.commit()
    await client.publish(channel(run_id), json.dumps({"id": event_id, "type": kind,
                                                      "data": data}))
    return int(event_id)
