"""The async engine and sessions, from the libpq-style DATABASE_URL the platform hands out."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def asyncpg_url(url: str) -> str:
    """`postgresql://...?sslmode=require` -> `postgresql+asyncpg://...?ssl=require`."""
    parts = urlsplit(url)
    query = [("ssl" if k == "sslmode" else k, v) for k, v in parse_qsl(parts.query)]
    query = [(k, v) for k, v in query if not (k == "ssl" and v == "disable")]
    return urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, urlencode(query),
                       parts.fragment))


def make_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(asyncpg_url(url), pool_size=pool_size, max_overflow=pool_size,
                               pool_pre_ping=True, pool_recycle=1800)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
