"""Run state transitions. Each is one conditional UPDATE, so concurrent or repeated deliveries
of the same job can never write a result twice or resurrect a finished run."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agent_service.db.models import ResearchRun

ACTIVE = ("queued", "running")


@dataclass(frozen=True)
class ClaimedRun:
    question: str
    max_sources: int
    options: dict[str, Any]
    created_at_epoch: float


# claim and complete run once per run in a worker, in plain asyncpg (see db/hot_path.py).
_CLAIM = """
UPDATE research_runs
SET status = 'running', attempts = attempts + 1, heartbeat_at = now(),
    started_at = coalesce(started_at, now())
WHERE id = $1 AND status IN ('queued', 'running')
RETURNING question, max_sources, options, extract(epoch FROM created_at)::float8 AS created
"""
_COMPLETE = """
UPDATE research_runs
SET status = 'succeeded', answer = $2, sources = $3, prompt_tokens = $4,
    completion_tokens = $5, cost_usd = $6, error = NULL, finished_at = now()
WHERE id = $1 AND status = 'running'
RETURNING id
"""


async def claim(pool: asyncpg.Pool, run_id: str) -> ClaimedRun | None:
    """Marks the run running; None when it already finished or was cancelled."""
    row = await pool.fetchrow(_CLAIM, uuid.UUID(run_id))
    if row is None:
        return None
    return ClaimedRun(row["question"], row["max_sources"], row["options"], row["created"])


async def complete(pool: asyncpg.Pool, run_id: str, *, answer: str,
                   sources: list[dict[str, Any]], prompt_tokens: int, completion_tokens: int,
                   cost_usd: Decimal) -> bool:
    """Writes the result exactly once; False if another delivery (or a cancel) won."""
    row = await pool.fetchrow(_COMPLETE, uuid.UUID(run_id), answer, sources, prompt_tokens,
                              completion_tokens, cost_usd)
    return row is not None


async def fail(session: AsyncSession, run_id: str, error: str) -> bool:
    row = (await session.execute(
        update(ResearchRun).where(ResearchRun.id == uuid.UUID(run_id),
                                  ResearchRun.status.in_(ACTIVE))
        .values(status="failed", error=error[:4000], finished_at=func.now())
        .returning(ResearchRun.id))).first()
    await session.commit()
    return row is not None


async def cancel(session: AsyncSession, run_id: str) -> str | None:
    """Cancels a queued or running run. Returns the status it had, None if it was finished."""
    before = (await session.execute(
        select(ResearchRun.status).where(ResearchRun.id == uuid.UUID(run_id))
        .with_for_update())).scalar_one_or_none()
    if before not in ACTIVE:
        await session.rollback()
        return None
    await session.execute(update(ResearchRun).where(ResearchRun.id == uuid.UUID(run_id))
                          .values(status="cancelled", finished_at=func.now()))
    await session.commit()
    return before


async def status_of(session: AsyncSession, run_id: str) -> str | None:
    return (await session.execute(select(ResearchRun.status)
                                  .where(ResearchRun.id == uuid.UUID(run_id)))).scalar_one_or_none()


async def queue_stats(session: AsyncSession) -> tuple[int, float]:
    """(queued runs, age in seconds of the oldest)."""
    row = (await session.execute(
        select(func.count(), func.coalesce(
            func.extract("epoch", func.now() - func.min(ResearchRun.created_at)), 0))
        .where(ResearchRun.status == "queued"))).one()
    return int(row[0]), float(row[1])
