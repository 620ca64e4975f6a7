"""A worker's /health reflects its event loop, not just the metrics thread."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from devtools.servers import free_port

from agent_service.jobs.health import Liveness, serve


@pytest.fixture
def endpoint() -> Iterator[tuple[str, Liveness]]:
    liveness = Liveness(limit_seconds=5)
    server = serve(free_port(), liveness, host="127.0.0.1")
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", liveness
    finally:
        server.shutdown()
        server.server_close()


def test_a_beating_loop_is_healthy(endpoint: tuple[str, Liveness]) -> None:
    url, liveness = endpoint
    liveness.beat()
    response = httpx.get(f"{url}/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_a_stalled_loop_fails_the_probe(endpoint: tuple[str, Liveness]) -> None:
    url, liveness = endpoint
    liveness.last_beat = time.monotonic() - 30
    response = httpx.get(f"{url}/health")
    assert response.status_code == 503
    assert response.json()["status"] == "event loop stalled"
    assert response.json()["seconds_since_beat"] >= 30


def test_metrics_are_still_served(endpoint: tuple[str, Liveness]) -> None:
    url, _ = endpoint
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert "# TYPE" in response.text


@pytest.mark.anyio
async def test_the_beat_task_keeps_the_loop_healthy() -> None:
    import asyncio

    liveness = Liveness(limit_seconds=5)
    liveness.last_beat = time.monotonic() - 30
    task = asyncio.create_task(liveness.run())
    await asyncio.sleep(0)
    try:
        assert liveness.age() < 1
    finally:
        task.cancel()
