"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from agent_service.api.deps import ServicesDep
from agent_service.core.metrics import DEPENDENCY_UP, exposition
from agent_service.db.migrate import head_revision

router = APIRouter(tags=["operations"])
HEAD = head_revision()


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process serves requests. Checks no dependency, so a database outage never
    makes Kubernetes restart every pod."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "a dependency is unreachable or the "
                                                       "schema is not at the latest migration"}})
async def ready(svc: ServicesDep) -> JSONResponse:
    """Readiness: Postgres answers with the schema at the latest migration, and Redis answers."""

    async def postgres() -> str:
        async with svc.engine.connect() as db:
            revision = (await db.execute(text("SELECT version_num FROM alembic_version"))
                        ).scalar_one_or_none()
        return "ok" if revision == HEAD else f"schema at {revision}, expected {HEAD}"

    async def redis() -> str:
        await svc.redis.ping()
        return "ok"

    checks: dict[str, Callable[[], Awaitable[str]]] = {"postgres": postgres, "redis": redis}
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            results[name] = await asyncio.wait_for(check(),
                                                   timeout=svc.settings.ready_timeout_seconds)
        except Exception as error:  # noqa: BLE001 - any failure means "not ready", reported
            results[name] = f"unavailable: {type(error).__name__}"
        # Alerts tell "Postgres is down" from "the API is down" by this gauge.
        DEPENDENCY_UP.labels(name).set(1 if results[name] == "ok" else 0)
    healthy = all(value == "ok" for value in results.values())
    return JSONResponse({"status": "ready" if healthy else "not ready", "checks": results},
                        status_code=200 if healthy else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus exposition of this process's metrics (all processes, in multiprocess mode)."""
    body, content_type = exposition()
    return Response(body, media_type=content_type)
