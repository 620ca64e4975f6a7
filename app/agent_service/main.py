"""Builds the FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from agent_service.api.deps import Services
from agent_service.api.middleware import Edge
from agent_service.api.routes import documents, health, research
from agent_service.api.run_batches import RunBatches
from agent_service.auth.keys import KeyCache
from agent_service.auth.ratelimit import RateLimiter
from agent_service.core.config import Settings, get_settings
from agent_service.core.errors import install_error_handlers
from agent_service.core.gc_tuning import freeze_startup_objects
from agent_service.core.logging import configure_logging
from agent_service.core.redis_client import make_redis
from agent_service.core.tracing import configure_tracing, instrument_app
from agent_service.db.session import make_engine

# Postgres connections per API process: enough for its share of the peak (a request holds one
# for a few milliseconds), few enough that every pod at full scale-out stays well under the
# database's max_connections.
API_POOL_SIZE = 10


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, console=settings.log_format == "console")
    tracing = configure_tracing(settings, "api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Autocommit: each of the API's writes is a single statement (db/runs.py), so a
        # request costs one round trip to Postgres, not three.
        engine = make_engine(settings.database_url.get_secret_value(), pool_size=API_POOL_SIZE,
                             autocommit=True)
        client = make_redis(settings.redis_url.get_secret_value())
        app.state.services = Services(
            settings=settings, engine=engine, redis=client,
            rate_limiter=RateLimiter(client, settings.redis_url.get_secret_value(),
                                     settings.rate_limit),
            keys=KeyCache(settings.api_key_cache_seconds), runs=RunBatches(engine))
        freeze_startup_objects()
        try:
            yield
        finally:
            await app.state.services.runs.drain()
            await app.state.services.rate_limiter.drain()
            await client.aclose()
            await engine.dispose()

    app = FastAPI(
        title="agent-service",
        version="0.1.0",
        summary="A research agent: ask a question, it searches the knowledge base and answers "
                "with citations.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(research.router)
    app.include_router(documents.router)
    app.add_middleware(Edge, max_bytes=settings.max_request_bytes)
    if tracing:
        instrument_app(app)
    return app
