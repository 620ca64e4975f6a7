"""Liveness, readiness, metrics, request ids, and the settings guard."""

from __future__ import annotations

import httpx
import pytest
from devtools.servers import free_port
from pydantic import ValidationError
from support import api_client, make_settings

from agent_service.core.config import Settings

pytestmark = pytest.mark.anyio


async def test_health_needs_no_dependency(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_postgres_redis_and_schema_are_in_place(
        client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}


async def test_ready_reports_an_unreachable_redis(servers: dict[str, str],
                                                  settings: Settings) -> None:
    broken = make_settings(servers, redis_url=f"redis://127.0.0.1:{free_port()}/0",
                           ready_timeout_seconds=2)
    async with api_client(broken) as http:
        response = await http.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["postgres"] == "ok"
    assert body["checks"]["redis"].startswith("unavailable: ")


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get("/health", headers={"X-Request-ID": "trace-42"})
    assert given.headers["x-request-id"] == "trace-42"
    generated = await client.get("/health")
    assert len(generated.headers["x-request-id"]) >= 16
    unsafe = await client.get("/health", headers={"X-Request-ID": "bad id\nwith newline"})
    assert unsafe.headers["x-request-id"] != "bad id\nwith newline"


async def test_metrics_use_route_templates(client: httpx.AsyncClient,
                                           auth: dict[str, str]) -> None:
    await client.get("/api/v1/research/00000000-0000-4000-8000-000000000000", headers=auth)
    text = (await client.get("/metrics")).text
    assert 'route="/api/v1/research/{run_id}"' in text
    assert "00000000-0000-4000-8000-000000000000" not in text
    assert "# TYPE http_request_duration_seconds histogram" in text


def test_production_refuses_development_connection_strings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match="DATABASE_URL is unset or the development default"):
        Settings()


@pytest.mark.parametrize("environment", ["production", "development"])
def test_a_provider_without_its_key_is_refused_everywhere(monkeypatch: pytest.MonkeyPatch,
                                                          environment: str) -> None:
    # `make dev` runs with ENVIRONMENT=development: a worker there must refuse too, instead of
    # starting and failing every run the API accepted.
    monkeypatch.setenv("ENVIRONMENT", environment)
    monkeypatch.setenv("DATABASE_URL", "postgresql://a:b@db/x")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("LLM_PROVIDERS", "openai,offline")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValidationError, match="LLM_PROVIDERS includes openai but "
                                              "OPENAI_API_KEY is empty"):
        Settings()


def test_development_may_use_local_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("ENVIRONMENT", "development")
    assert Settings().database_url.get_secret_value().startswith("postgresql://")
