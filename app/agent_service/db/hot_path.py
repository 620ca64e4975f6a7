"""The queries on every request's path, in plain asyncpg.

Measured on this project's 2-core benchmark machine, an ORM `session.get` costs about 1 ms of
CPU and an ORM insert with its commit about 1.4 ms, against 0.16-0.2 ms for the same statement
through an asyncpg pool: the ORM was most of the API's time per request. Everything else (the
worker, documents, cancellation, the CLI) keeps SQLAlchemy. The SQL names the columns of
db/models.py, whose migrations own the schema; the API tests exercise every query here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from agent_service.core.json_encoding import dumps_text

RUN_COLUMNS = ("id, api_key_id, question, max_sources, options, status, answer, sources, "
               "prompt_tokens, completion_tokens, cost_usd, error, attempts, created_at, "
               "started_at, finished_at")


async def _codecs(connection: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await connection.set_type_codec(kind, encoder=dumps_text, decoder=orjson.loads,
                                        schema="pg_catalog")


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Replaces asyncpg's reset query on release (UNLISTEN, RESET ALL, advisory unlocks...).

    That query is a second round trip for every pooled statement, and these pools never
    change session state. asyncpg still rolls back a transaction left open before calling
    this.
    """


async def create_pool(url: str, size: int, *, durable: bool = True) -> asyncpg.Pool:
    """A pool for the hot path; `url` is the libpq URL (`sslmode` is honoured).

    `durable=False` commits without waiting for the WAL flush (synchronous_commit off), for
    telemetry such as run events that may lose the last few rows in a database crash.
    """
    settings = {} if durable else {"synchronous_commit": "off"}
    return await asyncpg.create_pool(url, min_size=1, max_size=size, init=_codecs,
                                     server_settings=settings, reset=_keep_session,
                                     # Idle connections are closed, so a failover or a
                                     # restarted database leaves no stale ones for long.
                                     max_inactive_connection_lifetime=300)


async def find_key(pool: asyncpg.Pool, key_hash: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT id, name, prefix FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        key_hash)


@dataclass(slots=True)
class NewRun:
    id: uuid.UUID
    api_key_id: uuid.UUID
    question: str
    max_sources: int
    options: dict[str, Any]
    request_id: str | None
    trace_context: dict[str, str] | None = None


# Wakes the workers' relays (jobs/relay.py) when runs are saved; delivered on commit.
RUNS_SAVED_CHANNEL = "research_runs_saved"


async def insert_runs(pool: asyncpg.Pool, runs: Sequence[NewRun]) -> None:
    """One statement and one commit for any number of runs (core/batching.py).

    The batch travels as one jsonb document, unpacked by Postgres: encoded by orjson in one
    call, it costs the API less CPU than seven typed arrays, which asyncpg encodes element by
    element (a Python call per jsonb element). A JSON null is an SQL NULL here.
    """
    await pool.execute(
        "WITH saved AS (INSERT INTO research_runs (id, api_key_id, question, max_sources, "
        "options, status, sources, prompt_tokens, completion_tokens, cost_usd, request_id, "
        "attempts, trace_context) "
        "SELECT id, api_key_id, question, max_sources, options, 'queued', '[]'::jsonb, 0, 0, "
        "0, request_id, 0, trace_context FROM jsonb_to_recordset($1::jsonb) AS new (id uuid, "
        "api_key_id uuid, question text, max_sources int, options jsonb, request_id text, "
        "trace_context jsonb) RETURNING 1) "
        f"SELECT pg_notify('{RUNS_SAVED_CHANNEL}', count(*)::text) FROM saved",
        [{"id": r.id, "api_key_id": str(r.api_key_id), "question": r.question,
          "max_sources": r.max_sources, "options": r.options, "request_id": r.request_id,
          "trace_context": r.trace_context} for r in runs])


async def fetch_runs(pool: asyncpg.Pool,
                     run_ids: Sequence[uuid.UUID]) -> list[asyncpg.Record | None]:
    """The runs with these ids, in the same order (None where there is none)."""
    rows = await pool.fetch(f"SELECT {RUN_COLUMNS} FROM research_runs WHERE id = ANY($1)",
                            list(set(run_ids)))
    by_id = {row["id"]: row for row in rows}
    return [by_id.get(run_id) for run_id in run_ids]
