"""The server-sent event stream of a run: live progress, replay and resumption."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from agent_service.core.config import Settings

pytestmark = pytest.mark.anyio


async def read_stream(client: httpx.AsyncClient, url: str, headers: dict[str, str],
                      seconds: float = 30) -> list[dict[str, Any]]:
    """Parses a text/event-stream response until the server closes it."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async with asyncio.timeout(seconds):
        async with client.stream("GET", url, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if not line:
                    if "event" in current:
                        events.append(current)
                    current = {}
                elif line.startswith(":"):
                    continue
                else:
                    field, _, value = line.partition(":")
                    current[field] = value.strip()
    return events


async def test_stream_follows_a_run_to_its_end(client: httpx.AsyncClient, auth: dict[str, str],
                                               settings: Settings, worker: Any) -> None:
    await client.post("/api/v1/documents", headers=auth, json={
        "title": "Rolling updates", "content": "A rolling update replaces pods gradually."})
    run_id = (await client.post("/api/v1/research", headers=auth, json={
        "question": "How does a rolling update work?"})).json()["id"]
    events = await read_stream(client, f"/api/v1/research/{run_id}/events", auth)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "completed"
    assert {"plan", "search", "read", "answer"} <= set(kinds)
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert json.loads(events[kinds.index("plan")]["data"])["queries"]

    # Reconnecting with Last-Event-ID replays only what came after it.
    resumed = await read_stream(client, f"/api/v1/research/{run_id}/events",
                                {**auth, "Last-Event-ID": str(ids[2])})
    assert [int(e["id"]) for e in resumed] == ids[3:]


async def test_stream_of_a_cancelled_queued_run_ends(client: httpx.AsyncClient,
                                                     auth: dict[str, str]) -> None:
    run_id = (await client.post("/api/v1/research", headers=auth, json={
        "question": "Anything at all?"})).json()["id"]
    await client.post(f"/api/v1/research/{run_id}/cancel", headers=auth)
    events = await read_stream(client, f"/api/v1/research/{run_id}/events", auth)
    assert [e["event"] for e in events] == ["cancelled"]
    assert json.loads(events[0]["data"]) == {"previous_status": "queued"}


async def test_an_out_of_range_last_event_id_is_a_422(client: httpx.AsyncClient,
                                                      auth: dict[str, str]) -> None:
    run_id = (await client.post("/api/v1/research", headers=auth, json={
        "question": "Anything at all?"})).json()["id"]
    response = await client.get(f"/api/v1/research/{run_id}/events",
                                headers={**auth, "Last-Event-ID": str(2**63)})
    assert response.status_code == 422
    assert "last-event-id" in response.json()["error"]["message"]


async def test_stream_of_someone_elses_run_is_404(client: httpx.AsyncClient,
                                                  auth: dict[str, str]) -> None:
    response = await client.get(
        "/api/v1/research/00000000-0000-4000-8000-000000000000/events", headers=auth)
    assert response.status_code == 404
