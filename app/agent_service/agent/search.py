"""Knowledge-base search: Postgres full-text search over title and content (GIN-indexed)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from agent_service.llm.offline import keywords

# Any of the words may match (OR), ranked by ts_rank_cd so passages with more of them come first.
# Plain asyncpg: a run searches up to agentMaxIterations times (see db/hot_path.py for why).
SEARCH_SQL = """
    SELECT id, title, source, content, ts_rank_cd(search, query) AS rank
    FROM documents, to_tsquery('english', $1) AS query
    WHERE search @@ query
    ORDER BY rank DESC, created_at DESC
    LIMIT $2
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


async def search(pool: asyncpg.Pool, query: str, limit: int) -> list[Hit]:
    expression = tsquery(query)
    if expression is None:
        return []
    rows = await pool.fetch(SEARCH_SQL, expression, limit)
    return [Hit(str(r["id"]), r["title"], r["source"], r["content"], float(r["rank"]))
            for r in rows]
