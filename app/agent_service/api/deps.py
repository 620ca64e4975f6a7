"""Shared request dependencies: the database session, the caller's key, rate limiting."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import asyncpg
import redis.asyncio as redis
from fastapi import Depends, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agent_service.auth.keys import KeyCache, Principal
from agent_service.auth.ratelimit import RateLimiter
from agent_service.core.batching import MicroBatcher
from agent_service.core.config import Settings
from agent_service.db.hot_path import NewRun


@dataclass
class Services:
    """Process-wide clients, created in the app's lifespan."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    pg: asyncpg.Pool
    """Plain asyncpg for the per-request queries (db/hot_path.py)."""
    redis: redis.Redis
    rate_limiter: RateLimiter
    keys: KeyCache
    admissions: MicroBatcher[NewRun, float | None]
    """Submit's rate-limit hit and INSERT, one batch for both (api/batches.py)."""
    run_reads: MicroBatcher[uuid.UUID, asyncpg.Record | None]

    async def drain(self) -> None:
        """Flushes every batch already accepted (shutdown: nothing submitted is dropped)."""
        await self.admissions.drain()
        await self.run_reads.drain()
        await self.rate_limiter.drain()


def services_of(request: Request) -> Services:
    """The services without the dependency machinery: the two hottest routes (submit, read)
    and `current_key` call this, since every dependency costs FastAPI a resolution pass per
    request."""
    return request.app.state.services  # type: ignore[no-any-return]


async def services(request: Request) -> Services:
    # Async on purpose: FastAPI runs plain `def` dependencies in a worker thread, a thread
    # hand-off on every request for a dictionary lookup.
    return services_of(request)


ServicesDep = Annotated[Services, Depends(services)]


async def session(svc: ServicesDep) -> AsyncIterator[AsyncSession]:
    async with svc.sessions() as db:
        yield db


SessionDep = Annotated[AsyncSession, Depends(session)]


async def authenticated(request: Request) -> Principal:
    """The caller's key, or a 401. Not rate limited: see `current_key`."""
    svc = services_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "missing API key: send `Authorization: Bearer <key>`",
                            headers={"WWW-Authenticate": "Bearer"})
    principal = await svc.keys.authenticate(svc.pg, token.strip())
    if principal is None:
        raise HTTPException(401, "invalid or revoked API key",
                            headers={"WWW-Authenticate": "Bearer"})
    return principal


def rate_limited(svc: Services, retry_after: float) -> HTTPException:
    return HTTPException(429, f"rate limit of {svc.settings.rate_limit} per key exceeded; "
                              f"retry in {retry_after:.0f}s",
                         headers={"Retry-After": f"{retry_after:.0f}"})


async def charge_rate_limit(request: Request, principal: Principal) -> None:
    """Counts one request against the key's rate limit; a 429 once it is used up."""
    svc = services_of(request)
    retry_after = await svc.rate_limiter.check(principal.key_id)
    if retry_after is not None:
        raise rate_limited(svc, retry_after)


async def current_key(request: Request) -> Principal:
    """The caller's key, once the request is counted against its rate limit."""
    principal = await authenticated(request)
    await charge_rate_limit(request, principal)
    return principal


CurrentKey = Annotated[Principal, Depends(current_key)]
AuthenticatedKey = Annotated[Principal, Depends(authenticated)]
