"""Request dependencies: the database session, the caller's key and its rate limit, scopes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import redis.asyncio as redis
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from agent_service.auth.keys import KeyCache, Principal
from agent_service.auth.ratelimit import RateLimiter
from agent_service.core.config import Settings


@dataclass
class Services:
    """Process-wide clients, created in the app's lifespan."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: redis.Redis
    rate_limiter: RateLimiter
    keys: KeyCache


async def services(request: Request) -> Services:
    # Async on purpose: FastAPI runs plain `def` dependencies in a worker thread.
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(services)]


async def session(svc: ServicesDep) -> AsyncIterator[AsyncSession]:
    async with svc.sessions() as db:
        yield db


SessionDep = Annotated[AsyncSession, Depends(session)]
# auto_error=False: the 401 below says what to send, in the service's error shape.
bearer = HTTPBearer(auto_error=False, description="An API key: `agent-service keys create`.")
UNAUTHENTICATED = {"WWW-Authenticate": "Bearer"}


async def authenticated(
    svc: ServicesDep, db: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller's key, or a 401."""
    if credentials is None or not credentials.credentials.strip():
        raise HTTPException(401, "missing API key: send `Authorization: Bearer <key>`",
                            headers=UNAUTHENTICATED)
    principal = await svc.keys.authenticate(db, credentials.credentials.strip())
    if principal is None:
        raise HTTPException(401, "invalid or revoked API key", headers=UNAUTHENTICATED)
    return principal


async def current_key(svc: ServicesDep,
                      key: Annotated[Principal, Depends(authenticated)]) -> Principal:
    """The caller's key, once the request is counted against its rate limit (a 429 once the
    key has used it up). Every route under /api/v1 depends on this, so dependencies run
    before the request is validated: a 401 or 429 comes before a 422."""
    retry_after = await svc.rate_limiter.check(key.key_id)
    if retry_after is not None:
        raise HTTPException(429, f"rate limit of {svc.settings.rate_limit} per key exceeded; "
                                 f"retry in {retry_after:.0f}s",
                            headers={"Retry-After": f"{retry_after:.0f}"})
    return key


CurrentKey = Annotated[Principal, Depends(current_key)]


def scoped(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the caller's key (rate limited), or a 403 when it lacks `scope`."""
    async def holding(key: CurrentKey) -> Principal:
        if not key.may(scope):
            raise HTTPException(403, f"this key lacks the scope {scope}; its scopes: "
                                     f"{', '.join(sorted(key.scopes)) or 'none'}")
        return key

    return holding


RunsWriter = Annotated[Principal, Depends(scoped("runs:write"))]
DocumentsWriter = Annotated[Principal, Depends(scoped("documents:write"))]
