"""The process's one engine (one connection pool) and its sessions, from the libpq-style
DATABASE_URL the platform hands out."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from agent_service.core.json_encoding import dumps_text


def asyncpg_url(url: str) -> str:
    """`postgresql://...?sslmode=require` -> `postgresql+asyncpg://...?ssl=require`."""
    parts = urlsplit(url)
    query = [("ssl" if k == "sslmode" else k, v) for k, v in parse_qsl(parts.query)]
    query = [(k, v) for k, v in query if not (k == "ssl" and v == "disable")]
    return urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, urlencode(query),
                       parts.fragment))


def make_engine(url: str, pool_size: int = 10, *, pool_timeout: float = 5.0,
                autocommit: bool = False, pre_ping: bool = True) -> AsyncEngine:
    """An engine whose pool holds at most `pool_size` connections.

    `autocommit`: every statement commits on its own, with no BEGIN and COMMIT round trips
    around it; for callers whose every write is one statement (the API).

    With `pre_ping` (the default), every checkout is pinged first, so the connections a database
    restart or failover broke are replaced instead of failing the next query. Without it, the
    first statement on a broken connection fails as an outage and SQLAlchemy invalidates the
    whole pool, which suits callers that retry outages anyway (the worker). A request that
    finds the pool exhausted waits `pool_timeout` seconds, then meets a TimeoutError, which is
    an outage (core/outage.py).
    """
    return create_async_engine(asyncpg_url(url), pool_size=pool_size, max_overflow=0,
                               pool_timeout=pool_timeout, pool_pre_ping=pre_ping,
                               pool_recycle=1800, json_serializer=dumps_text,
                               json_deserializer=orjson.loads,
                               isolation_level="AUTOCOMMIT" if autocommit else None)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
