"""Research runs: saving, reading and every state transition.

Each transition is one conditional UPDATE, so concurrent or repeated deliveries of the same job
can never write a result twice or resurrect a finished run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agent_service.db.models import ApiKey, ResearchRun

ACTIVE = ("queued", "running")
# Postgres notifies this channel when runs are saved (a trigger, migration 0004): it wakes the
# workers' relays (jobs/relay.py), on commit only.
RUNS_SAVED_CHANNEL = "research_runs_saved"


async def save(session: AsyncSession, run_id: uuid.UUID, api_key_id: uuid.UUID, question: str,
               max_sources: int, options: dict[str, Any], request_id: str | None,
               trace_context: dict[str, str] | None) -> None:
    """Saves a queued run and commits: from here on the relay owes it to the queue."""
    await session.execute(insert(ResearchRun).values(
        id=run_id, api_key_id=api_key_id, question=question, max_sources=max_sources,
        options=options, status="queued", sources=[], prompt_tokens=0, completion_tokens=0,
        cost_usd=0, attempts=0, request_id=request_id, trace_context=trace_context))
    await session.commit()


async def owned(session: AsyncSession, run_id: uuid.UUID,
                api_key_id: uuid.UUID) -> ResearchRun | None:
    """The run, if the key submitted it (another key's run is as absent as a missing one)."""
    return await session.scalar(select(ResearchRun).where(ResearchRun.id == run_id,
                                                          ResearchRun.api_key_id == api_key_id))


@dataclass(frozen=True)
class ClaimedRun:
    question: str
    max_sources: int
    options: dict[str, Any]
    created_at_epoch: float
    tenant: str
    """The submitting key's tenant: whose documents the run may search."""


async def claim(session: AsyncSession, run_id: str) -> ClaimedRun | None:
    """Marks the run running; None when it already finished or was cancelled."""
    row = (await session.execute(
        update(ResearchRun)
        .where(ResearchRun.id == uuid.UUID(run_id), ResearchRun.status.in_(ACTIVE),
               ApiKey.id == ResearchRun.api_key_id)
        .values(status="running", attempts=ResearchRun.attempts + 1, heartbeat_at=func.now(),
                started_at=func.coalesce(ResearchRun.started_at, func.now()))
        .returning(ResearchRun.question, ResearchRun.max_sources, ResearchRun.options,
                   func.extract("epoch", ResearchRun.created_at), ApiKey.tenant))).first()
    await session.commit()
    if row is None:
        return None
    return ClaimedRun(row[0], row[1], row[2], float(row[3]), row[4])


async def complete(session: AsyncSession, run_id: str, *, answer: str,
                   sources: list[dict[str, Any]], prompt_tokens: int, completion_tokens: int,
                   cost_usd: Decimal) -> bool:
    """Writes the result exactly once; False if another delivery (or a cancel) won."""
    row = (await session.execute(
        update(ResearchRun)
        .where(ResearchRun.id == uuid.UUID(run_id), ResearchRun.status == "running")
        .values(status="succeeded", answer=answer, sources=sources, prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens, cost_usd=cost_usd, error=None,
                finished_at=func.now())
        .returning(ResearchRun.id))).first()
    await session.commit()
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
