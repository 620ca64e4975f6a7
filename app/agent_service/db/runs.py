"""Research runs: saving, reading and every state transition.

Each transition is one conditional UPDATE, so concurrent or repeated deliveries of the same job
can never write a result twice or resurrect a finished run. The functions run on the caller's
connection and leave the transaction to it: the API's connections autocommit each statement,
a worker wraps each call in a transaction of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agent_service.db.models import ApiKey, ResearchRun

ACTIVE = ("queued", "running")
# Postgres notifies this channel when runs are saved (a trigger, migration 0004): it wakes the
# workers' relays (jobs/relay.py), on commit only.
RUNS_SAVED_CHANNEL = "research_runs_saved"
# The table itself: statements on it are plain SQL expressions, built once here and compiled
# once per process, without the ORM's unit of work (measured: most of a request's CPU).
RUNS = cast(Table, ResearchRun.__table__)
KEYS = cast(Table, ApiKey.__table__)
_SAVE = insert(RUNS)
_OWNED = select(RUNS).where(RUNS.c.id == bindparam("run_id"),
                            RUNS.c.api_key_id == bindparam("key_id"))
_OLD = (select(RUNS.c.id, RUNS.c.status).where(RUNS.c.id == bindparam("run_id"))
        .with_for_update().subquery("old"))
_CANCEL = (update(RUNS).where(RUNS.c.id == _OLD.c.id, _OLD.c.status.in_(ACTIVE))
           .values(status="cancelled", finished_at=func.now())
           .returning(_OLD.c.status.label("previous_status"), *RUNS.c))
_CLAIM = (update(RUNS)
          .where(RUNS.c.id == bindparam("run_id"), RUNS.c.status.in_(ACTIVE),
                 KEYS.c.id == RUNS.c.api_key_id)
          .values(status="running", attempts=RUNS.c.attempts + 1, heartbeat_at=func.now(),
                  started_at=func.coalesce(RUNS.c.started_at, func.now()))
          .returning(RUNS.c.question, RUNS.c.max_sources, RUNS.c.options,
                     func.extract("epoch", RUNS.c.created_at), KEYS.c.tenant))
_COMPLETE = (update(RUNS).where(RUNS.c.id == bindparam("run_id"), RUNS.c.status == "running")
             .values(status="succeeded", error=None, finished_at=func.now(),
                     **{name: bindparam(name) for name in (
                         "answer", "sources", "prompt_tokens", "completion_tokens",
                         "cost_usd")})
             .returning(RUNS.c.id))
_FAIL = (update(RUNS).where(RUNS.c.id == bindparam("run_id"), RUNS.c.status.in_(ACTIVE))
         .values(status="failed", error=bindparam("error"), finished_at=func.now())
         .returning(RUNS.c.id))


@dataclass(frozen=True, slots=True)
class NewRun:
    id: uuid.UUID
    api_key_id: uuid.UUID
    question: str
    max_sources: int
    options: dict[str, Any]
    request_id: str | None
    trace_context: dict[str, str] | None = None


async def save(db: AsyncConnection, new_runs: Sequence[NewRun]) -> None:
    """Saves queued runs, any number in one statement; once committed, the relay owes them to
    the queue."""
    await db.execute(_SAVE, [{
        "id": run.id, "api_key_id": run.api_key_id, "question": run.question,
        "max_sources": run.max_sources, "options": run.options, "status": "queued",
        "sources": [], "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0,
        "attempts": 0, "request_id": run.request_id, "trace_context": run.trace_context}
        for run in new_runs])


async def read_many(db: AsyncConnection, run_ids: Sequence[uuid.UUID]) -> list[Row[Any] | None]:
    """The runs with these ids, in the same order (None where there is none)."""
    rows = (await db.execute(select(RUNS).where(RUNS.c.id.in_(set(run_ids))))).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(run_id) for run_id in run_ids]


async def owned(db: AsyncConnection, run_id: uuid.UUID,
                api_key_id: uuid.UUID) -> Row[Any] | None:
    """The run, if the key submitted it (another key's run is as absent as a missing one)."""
    return (await db.execute(_OWNED, {"run_id": run_id, "key_id": api_key_id})).first()


@dataclass(frozen=True)
class ClaimedRun:
    question: str
    max_sources: int
    options: dict[str, Any]
    created_at_epoch: float
    tenant: str
    """The submitting key's tenant: whose documents the run may search."""


async def claim(db: AsyncConnection, run_id: str) -> ClaimedRun | None:
    """Marks the run running; None when it already finished or was cancelled."""
    row = (await db.execute(_CLAIM, {"run_id": uuid.UUID(run_id)})).first()
    if row is None:
        return None
    return ClaimedRun(row[0], row[1], row[2], float(row[3]), row[4])


async def complete(db: AsyncConnection, run_id: str, *, answer: str,
                   sources: list[dict[str, Any]], prompt_tokens: int, completion_tokens: int,
                   cost_usd: Decimal) -> bool:
    """Writes the result exactly once; False if another delivery (or a cancel) won."""
    row = (await db.execute(_COMPLETE, {
        "run_id": uuid.UUID(run_id), "answer": answer, "sources": sources,
        "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
        "cost_usd": cost_usd})).first()
    return row is not None


async def fail(db: AsyncConnection, run_id: str, error: str) -> bool:
    row = (await db.execute(_FAIL, {"run_id": uuid.UUID(run_id),
                                         "error": error[:4000]})).first()
    return row is not None


async def cancel(db: AsyncConnection, run_id: uuid.UUID) -> Row[Any] | None:
    """Cancels a queued or running run in one statement; the run as cancelled, with the
    status it had as `previous_status`, or None if it had already finished."""
    row = (await db.execute(_CANCEL, {"run_id": run_id})).first()
    return row


async def status_of(db: AsyncConnection, run_id: uuid.UUID) -> str | None:
    return (await db.execute(select(RUNS.c.status)
                                  .where(RUNS.c.id == run_id))).scalar_one_or_none()


async def queue_stats(db: AsyncConnection) -> tuple[int, float]:
    """(queued runs, age in seconds of the oldest)."""
    row = (await db.execute(
        select(func.count(), func.coalesce(
            func.extract("epoch", func.now() - func.min(RUNS.c.created_at)), 0))
        .where(RUNS.c.status == "queued"))).one()
    return int(row[0]), float(row[1])
