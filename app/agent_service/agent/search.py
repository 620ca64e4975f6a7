"""Knowledge-base search: Postgres full-text search over title and content (GIN-indexed)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from agent_service.agent.text import keywords

# Any of the words may match (OR), ranked by ts_rank_cd so passages with more of them come
# first. All of a run's queries go in one statement (one round trip), each with its position.
# Plain asyncpg, as on the API's hot path (db/hot_path.py).
SEARCH_MANY_SQL = """
    SELECT q.n, hit.* FROM unnest($1::text[]) WITH ORDINALITY AS q (expression, n)
    CROSS JOIN LATERAL (
        SELECT id, title, source, content, created_at, ts_rank_cd(search, query) AS rank
        FROM documents, to_tsquery('english', q.expression) AS query
        WHERE search @@ query
        ORDER BY rank DESC, created_at DESC
        LIMIT $2
    ) AS hit
    ORDER BY q.n, hit.rank DESC, hit.created_at DESC
"""


@dataclass(frozen=True)
class Hit:
    document_id: str
    title: str
    source: str | None
    content: str
    rank: float


def tsquery(query: str) -> str | None:
    """An OR query of the words in `query`, safe to hand to to_tsquery."""
    words = ["".join(ch for ch in word if ch.isalnum()) for word in keywords(query)]
    words = [w for w in words if w]
    return " | ".join(words) if words else None


async def search_many(pool: asyncpg.Pool, queries: list[str], limit: int) -> list[list[Hit]]:
    """The ranked hits of each query, in one statement; the results in the queries' order.

    A query without searchable words is sent as NULL: to_tsquery(NULL) matches nothing.
    """
    expressions = [tsquery(q) for q in queries]
    results: list[list[Hit]] = [[] for _ in queries]
    if any(expressions):
        for r in await pool.fetch(SEARCH_MANY_SQL, expressions, limit):
            results[r["n"] - 1].append(
                Hit(str(r["id"]), r["title"], r["source"], r["content"], float(r["rank"])))
    return results
