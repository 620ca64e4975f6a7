"""Builds the FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as redis
from fastapi import FastAPI

from agent_service.api import batches
from agent_service.api.deps import Services
from agent_service.api.middleware import Edge
from agent_service.api.routes import documents, health, research
from agent_service.auth.keys import KeyCache
from agent_service.auth.ratelimit import RateLimiter
from agent_service.core.config import Settings, get_settings
from agent_service.core.errors import install_error_handlers
from agent_service.core.gc_tuning import freeze_startup_objects
from agent_service.core.logging import configure_logging
from agent_service.core.tracing import configure_tracing, instrument_app
from agent_service.db.hot_path import create_pool
from agent_service.db.session import make_engine, make_sessionmaker


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, console=settings.log_format == "console")
    tracing = configure_tracing(settings, "api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # At most 14 Postgres connections per API process (8 + 3 + 3 overflow): the ORM only
        # serves the colder routes.
        engine = make_engine(settings.database_url.get_secret_value(), pool_size=3)
        pg = await create_pool(settings.database_url.get_secret_value(), size=8)
        client = redis.from_url(settings.redis_url.get_secret_value())
        limiter = RateLimiter(client, settings.redis_url.get_secret_value(), settings.rate_limit)
        app.state.services = services = Services(
            settings=settings, sessions=make_sessionmaker(engine), pg=pg, redis=client,
            rate_limiter=limiter, keys=KeyCache(settings.api_key_cache_seconds),
            admissions=batches.admissions(pg, limiter), run_reads=batches.run_reads(pg))
        freeze_startup_objects()
        try:
            yield
        finally:
            await services.drain()
            await client.aclose()
            await pg.close()
            await engine.dispose()

    app = FastAPI(
        title="agent-service",
        version="0.1.0",
        summary="A research agent: ask a question, it searches the knowledge base and answers "
                "with citations.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    research.add_hot_routes(app.router)
    app.include_router(health.router)
    app.include_router(research.router)
    app.include_router(documents.router)
    app.add_middleware(Edge, max_bytes=settings.max_request_bytes)
    if tracing:
        instrument_app(app)
    return app
