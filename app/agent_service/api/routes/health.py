"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

import asyncpg
import redis.asyncio as redis
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agent_service.core.config import get_settings

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process serves requests. Checks no dependency, so a database outage never
    makes Kubernetes restart every pod."""
    return {"status": "ok"}


async def _check_postgres(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.fetchval("SELECT 1")
    finally:
        await connection.close()


async def _check_redis(url: str) -> None:
    client = redis.from_url(url)
    try:
        await client.ping()
    finally:
        await client.aclose()


@router.get("/ready", responses={503: {"description": "a dependency is unreachable"}})
async def ready() -> JSONResponse:
    """Readiness: Postgres and Redis answer within the timeout."""
    settings = get_settings()
    checks = {"postgres": _check_postgres(settings.database_url),
              "redis": _check_redis(settings.redis_url)}
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check, timeout=settings.ready_timeout_seconds)
            results[name] = "ok"
        except Exception as error:  # noqa: BLE001 - any failure means "not ready", reported
            results[name] = f"unavailable: {type(error).__name__}"
    healthy = all(value == "ok" for value in results.values())
    return JSONResponse({"status": "ready" if healthy else "not ready", "checks": results},
                        status_code=200 if healthy else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus exposition of this process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
