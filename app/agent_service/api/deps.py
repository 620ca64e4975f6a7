"""Request dependencies: a database connection, and the caller's key (authenticated, counted
against its rate limit, holding the scope the route needs)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import redis.asyncio as redis
from fastapi import Depends, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agent_service.api.run_batches import RunBatches
from agent_service.auth.keys import KeyCache, Principal
from agent_service.auth.ratelimit import RateLimiter
from agent_service.core.config import Settings

UNAUTHENTICATED = {"WWW-Authenticate": "Bearer"}


@dataclass
class Services:
    """Process-wide clients, created in the app's lifespan."""

    settings: Settings
    engine: AsyncEngine
    redis: redis.Redis
    rate_limiter: RateLimiter
    keys: KeyCache
    runs: RunBatches


def services_of(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def services(request: Request) -> Services:
    # Async on purpose: FastAPI runs plain `def` dependencies in a worker thread.
    return services_of(request)


ServicesDep = Annotated[Services, Depends(services)]


async def connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """A pooled connection for the request; each statement commits on its own (main.py)."""
    async with services_of(request).engine.connect() as db:
        yield db


DatabaseDep = Annotated[AsyncConnection, Depends(connection)]


def api_key(scope: str | None = None) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller's key, authenticated, counted against its rate limit and, with
    `scope`, holding it. 401, then 429, then 403; all of them before the body's 422.

    One dependency rather than a chain of them: FastAPI solves each dependency on every
    request, and that was a measurable part of the API's CPU (make bench-app).
    """
    async def caller(request: Request) -> Principal:
        svc = services_of(request)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "missing API key: send `Authorization: Bearer <key>`",
                                headers=UNAUTHENTICATED)
        key = await svc.keys.authenticate(svc.engine, token.strip())
        if key is None:
            raise HTTPException(401, "invalid or revoked API key", headers=UNAUTHENTICATED)
        retry_after = await svc.rate_limiter.check(key.key_id)
        if retry_after is not None:
            raise HTTPException(429, f"rate limit of {svc.settings.rate_limit} per key "
                                     f"exceeded; retry in {retry_after:.0f}s",
                                headers={"Retry-After": f"{retry_after:.0f}"})
        if scope is not None and not key.may(scope):
            raise HTTPException(403, f"this key lacks the scope {scope}; its scopes: "
                                     f"{', '.join(sorted(key.scopes)) or 'none'}")
        return key

    return caller


CurrentKey = Annotated[Principal, Depends(api_key())]
RunsWriter = Annotated[Principal, Depends(api_key("runs:write"))]
DocumentsWriter = Annotated[Principal, Depends(api_key("documents:write"))]
