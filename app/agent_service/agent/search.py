"""Knowledge-base search: Postgres full-text search over title and content (GIN-indexed), over
the run's tenant's documents and the shared ones."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agent_service.agent.text import keywords
from agent_service.db.models import Document


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


_QUERY = func.to_tsquery("english", bindparam("expression"))
_RANK = func.ts_rank_cd(Document.search, _QUERY)
# Built once: a run searches once per planned query, on the worker's hot path.
_SEARCH = (select(Document.id, Document.title, Document.source, Document.content, _RANK)
           .where(Document.search.bool_op("@@")(_QUERY),
                  or_(Document.tenant == bindparam("tenant"), Document.tenant.is_(None)))
           .order_by(_RANK.desc(), Document.created_at.desc())
           .limit(bindparam("limit")))


async def search(db: AsyncConnection, query: str, tenant: str, limit: int) -> list[Hit]:
    """The documents matching any of the query's words, those with more of them first
    (ts_rank_cd), newest first among equals."""
    expression = tsquery(query)
    if expression is None:
        return []
    rows = await db.execute(_SEARCH, {"expression": expression, "tenant": tenant,
                                      "limit": limit})
    return [Hit(str(r[0]), r[1], r[2], r[3], float(r[4])) for r in rows]
