"""Research runs: submit, read, list, cancel, and follow their progress live."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, HTTPException, Query, Request
from sqlalchemy import Row, and_, or_, select
from sse_starlette import EventSourceResponse, ServerSentEvent

from agent_service.agent.events import channel, record_event
from agent_service.api.deps import (
    CurrentKey,
    DatabaseDep,
    RunsWriter,
    Services,
    ServicesDep,
    services_of,
)
from agent_service.api.pagination import decode_cursor, encode_cursor
from agent_service.api.schemas import (
    ErrorBody,
    Links,
    ResearchCreate,
    RunAccepted,
    RunDetail,
    RunPage,
    RunStatus,
    RunSummary,
    Source,
    Usage,
)
from agent_service.core.metrics import RUNS as RUN_OUTCOMES
from agent_service.core.request_id import current_request_id
from agent_service.core.tracing import tag_run, trace_carrier
from agent_service.db import runs
from agent_service.db.models import TERMINAL_STATUSES, RunEvent
from agent_service.db.runs import RUNS

PREFIX = "/api/v1/research"
router = APIRouter(prefix=PREFIX, tags=["research"])
audit = structlog.get_logger("agent_service.audit")
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody}, 404: {"model": ErrorBody}, 422: {"model": ErrorBody},
    429: {"model": ErrorBody}, 503: {"model": ErrorBody}}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 403: {"model": ErrorBody}}
TERMINAL_EVENTS = ("completed", "failed", "cancelled")


def _not_found(run_id: uuid.UUID) -> HTTPException:
    # Another key's run is as absent as a missing one.
    return HTTPException(404, f"research run {run_id} not found")


async def _own_run(db: DatabaseDep, key: CurrentKey, run_id: uuid.UUID) -> Row[Any]:
    run = await runs.owned(db, run_id, key.id)
    if run is None:
        raise _not_found(run_id)
    return run


def run_detail(run: Row[Any]) -> RunDetail:
    """A run as the API shows it (the restore check reads runs through this too)."""
    return RunDetail(
        id=run.id, status=run.status, question=run.question,
        created_at=run.created_at, finished_at=run.finished_at, max_sources=run.max_sources,
        tags=list(run.options.get("tags", [])), answer=run.answer,
        sources=[Source(**s) for s in run.sources],
        usage=Usage(prompt_tokens=run.prompt_tokens, completion_tokens=run.completion_tokens,
                    cost_usd=run.cost_usd),
        error=run.error, attempts=run.attempts, started_at=run.started_at)


@router.post("", status_code=202, response_model=RunAccepted, responses=WRITE_ERRORS)
async def submit(body: ResearchCreate, key: RunsWriter, request: Request) -> RunAccepted:
    """Queue a research question; poll the run or follow its events for the answer.

    A 202 means the run is saved: the workers' relay hands every saved run to the queue
    (jobs/relay.py), so an accepted run is never lost, even if Redis is down right now.
    """
    run_id = uuid.uuid4()
    await services_of(request).runs.saves.submit(runs.NewRun(
        run_id, key.id, body.question, body.max_sources, body.options.model_dump(),
        current_request_id.get(), trace_carrier() or None))
    RUN_OUTCOMES.labels("queued").inc()
    tag_run(str(run_id))
    base = f"{PREFIX}/{run_id}"
    return RunAccepted(id=run_id, status="queued",
                       links=Links(self=base, events=f"{base}/events"))


@router.get("/{run_id}", response_model=RunDetail, responses=ERRORS)
async def read(run_id: uuid.UUID, key: CurrentKey, request: Request) -> RunDetail:
    """A run's status, answer, cited sources, token and cost totals, timestamps and error."""
    run = await services_of(request).runs.reads.submit(run_id)
    if run is None or run.api_key_id != key.id:
        raise _not_found(run_id)
    return run_detail(run)


@router.get("", response_model=RunPage, responses={**ERRORS, 400: {"model": ErrorBody}})
async def list_runs(
    key: CurrentKey, db: DatabaseDep,
    status: Annotated[RunStatus | None, Query(description="Only runs in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> RunPage:
    """The caller's runs, newest first, a page at a time."""
    query = select(RUNS).where(RUNS.c.api_key_id == key.id)
    if status is not None:
        query = query.where(RUNS.c.status == status)
    if cursor:
        created_at, last_id = decode_cursor(cursor)
        query = query.where(or_(RUNS.c.created_at < created_at,
                                and_(RUNS.c.created_at == created_at, RUNS.c.id < last_id)))
    rows = list((await db.execute(query.order_by(RUNS.c.created_at.desc(), RUNS.c.id.desc())
                                  .limit(limit + 1))).all())
    page = rows[:limit]
    following = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return RunPage(items=[RunSummary.model_validate(r) for r in page], next_cursor=following)


@router.post("/{run_id}/cancel", response_model=RunDetail,
             responses={**WRITE_ERRORS, 409: {"model": ErrorBody}})
async def cancel(run_id: uuid.UUID, key: RunsWriter, db: DatabaseDep,
                 svc: ServicesDep) -> RunDetail:
    """Cancel a queued or running run; 409 if it already finished."""
    await _own_run(db, key, run_id)
    cancelled = await runs.cancel(db, run_id)
    if cancelled is None:
        status = await runs.status_of(db, run_id)
        raise HTTPException(409, f"research run {run_id} already {status}; only queued or "
                                 "running runs can be cancelled")
    previous = cancelled.previous_status
    RUN_OUTCOMES.labels("cancelled").inc()
    audit.info("run cancelled", run_id=str(run_id), key_prefix=key.prefix,
               previous_status=previous)
    await record_event(svc.engine, svc.redis, str(run_id), "cancelled",
                       {"previous_status": previous})
    return run_detail(cancelled)


@router.get("/{run_id}/events", responses={**ERRORS, 200: {
    "content": {"text/event-stream": {}}, "description": "Server-sent events: one per step "
    "(plan, search, read, answer, completed, failed, cancelled), each with its id."}})
async def events(
    run_id: uuid.UUID, request: Request, key: CurrentKey, db: DatabaseDep, svc: ServicesDep,
    # Event ids are Postgres bigints; a larger id must be a 422, not a broken stream.
    last_event_id: Annotated[int | None, Header(ge=0, le=2**63 - 1)] = None,
) -> EventSourceResponse:
    """Stream the run's progress as it happens; reconnect with Last-Event-ID to resume."""
    run = await _own_run(db, key, run_id)
    finished = run.status in TERMINAL_STATUSES
    await db.close()
    return EventSourceResponse(_stream(svc, str(run_id), last_event_id or 0, finished, request),
                               ping=15)


async def _stream(svc: Services, run_id: str, after: int, finished: bool,
                  request: Request) -> AsyncIterator[ServerSentEvent]:
    pubsub = svc.redis.pubsub()
    # Subscribe before replaying so nothing published in between is lost.
    await pubsub.subscribe(channel(run_id))
    try:
        async with svc.engine.connect() as db:
            stored = (await db.execute(
                select(RunEvent.id, RunEvent.type, RunEvent.data)
                .where(RunEvent.run_id == uuid.UUID(run_id), RunEvent.id > after)
                .order_by(RunEvent.id))).all()
        for event in stored:
            after = event.id
            yield ServerSentEvent(json.dumps(event.data), event=event.type, id=str(event.id))
            if event.type in TERMINAL_EVENTS:
                return
        if finished:
            return
        while not await request.is_disconnected():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None:
                await asyncio.sleep(0)
                continue
            event = json.loads(message["data"])
            if event["id"] <= after:
                continue
            after = event["id"]
            yield ServerSentEvent(json.dumps(event["data"]), event=event["type"],
                                  id=str(event["id"]))
            if event["type"] in TERMINAL_EVENTS:
                return
    finally:
        await pubsub.unsubscribe(channel(run_id))
        await pubsub.aclose()  # type: ignore[no-untyped-call]
