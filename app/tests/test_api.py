"""The public API contract: auth, rate limits, bad input, pagination, cancellation, documents."""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from collections.abc import AsyncIterator
from typing import cast

import asyncpg
import httpx
import pytest
import redis.asyncio as redis
import sqlalchemy.exc
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from support import Collected, api_client, database, make_settings, new_key

from agent_service.auth.keys import KeyCache, revoke_key
from agent_service.auth.ratelimit import RateLimiter
from agent_service.core.config import Settings
from agent_service.db.session import make_engine, make_sessionmaker
from agent_service.main import create_app

pytestmark = pytest.mark.anyio
QUESTION = {"question": "How does Kubernetes roll out a Deployment?", "max_sources": 3}


async def test_requests_without_a_key_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/research", json=QUESTION)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"
    assert "Authorization: Bearer" in response.json()["error"]["message"]


async def test_a_wrong_key_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/research",
                                headers={"Authorization": "Bearer ak_00000000_nope"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "invalid or revoked API key"


class CountingEngine:
    """A real engine, counting the look-ups (connections) that reach Postgres."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine, self.lookups = engine, 0

    def connect(self) -> AsyncConnection:
        self.lookups += 1
        return self.engine.connect()


async def test_a_refused_key_is_looked_up_once_per_cache_period(settings: Settings,
                                                                 api_key: str) -> None:
    cache = KeyCache(ttl=60)
    async with database(settings) as engine:
        counting = CountingEngine(engine)
        spy = cast(AsyncEngine, counting)
        for _ in range(5):
            assert await cache.authenticate(spy, "ak_00000000_nope") is None
        assert counting.lookups == 1
        for _ in range(5):
            assert await cache.authenticate(spy, api_key) is not None
        assert counting.lookups == 2
        assert await KeyCache(ttl=0).authenticate(spy, "ak_00000000_nope") is None
        assert counting.lookups == 3


async def test_a_full_key_cache_forgets_the_least_recently_used_key_only(
        settings: Settings) -> None:
    class SmallCache(KeyCache):
        MAX_ENTRIES = 2

    cache = SmallCache(ttl=60)
    async with database(settings) as engine:
        counting = CountingEngine(engine)
        spy = cast(AsyncEngine, counting)
        for key in ("ak_00000001_a", "ak_00000002_b", "ak_00000003_c", "ak_00000003_c",
                    "ak_00000002_b"):
            await cache.authenticate(spy, key)
        assert counting.lookups == 3, "the two most recent keys stay cached"
        await cache.authenticate(spy, "ak_00000001_a")
        assert counting.lookups == 4, "the oldest was evicted"


async def test_a_revoked_key_stops_working(servers: dict[str, str], api_key: str) -> None:
    no_cache = make_settings(servers, api_key_cache_seconds=0)
    headers = {"Authorization": f"Bearer {api_key}"}
    async with api_client(no_cache) as http:
        assert (await http.get("/api/v1/research", headers=headers)).status_code == 200
        engine = make_engine(servers["database_url"], pool_size=1)
        async with make_sessionmaker(engine)() as session:
            assert (await revoke_key(session, api_key.split("_")[1])).revoked
        await engine.dispose()
        assert (await http.get("/api/v1/research", headers=headers)).status_code == 401


async def test_an_unreachable_redis_is_a_503_with_retry_after(servers: dict[str, str],
                                                               api_key: str) -> None:
    from devtools.servers import free_port

    # Nothing listens on this port: every Redis call fails to connect.
    broken = make_settings({**servers, "redis_url": f"redis://127.0.0.1:{free_port()}/0"},
                           api_key_cache_seconds=0)
    async with api_client(broken) as http:
        response = await http.post("/api/v1/research", json=QUESTION,
                                   headers={"Authorization": f"Bearer {api_key}"})
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json()["error"]["code"] == "unavailable"
        metrics = (await http.get("/metrics")).text
        assert 'http_requests_total{method="POST",route="/api/v1/research",status="503"}' in \
            metrics
        ready = await http.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"].startswith("unavailable")
        assert 'dependency_up{dependency="redis"} 0.0' in (await http.get("/metrics")).text


async def test_submit_returns_202_and_the_run_is_queued(client: httpx.AsyncClient,
                                                         auth: dict[str, str]) -> None:
    response = await client.post("/api/v1/research", json=QUESTION,
                                 headers={**auth, "X-Request-ID": "req-submit-1"})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    run_id = body["id"]
    assert body["links"] == {"self": f"/api/v1/research/{run_id}",
                             "events": f"/api/v1/research/{run_id}/events"}
    run = (await client.get(f"/api/v1/research/{run_id}", headers=auth)).json()
    assert run["status"] == "queued" and run["question"] == QUESTION["question"]
    assert run["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": "0.000000"}
    assert run["answer"] is None and run["sources"] == []


@pytest.mark.parametrize(("body", "field"), [
    ({"max_sources": 3}, "question"),
    ({"question": "hi"}, "question"),
    ({"question": "A valid question?", "max_sources": 0}, "max_sources"),
    ({"question": "A valid question?", "max_sources": 21}, "max_sources"),
    ({"question": "A valid question?", "unknown": True}, "unknown"),
    ({"question": "A valid question?", "options": {"tags": ["has space"]}}, "options.tags.0"),
    ({"question": "Null \u0000 byte?"}, "question"),
])
async def test_bad_input_is_a_422_naming_the_field(client: httpx.AsyncClient,
                                                   auth: dict[str, str], body: dict[str, object],
                                                   field: str) -> None:
    response = await client.post("/api/v1/research", json=body, headers=auth)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [f["field"] for f in error["fields"]]
    assert field in error["message"]


@pytest.mark.parametrize("path", ["/api/v1/research", "/api/v1/documents"])
@pytest.mark.parametrize(("content", "content_type", "status", "message"), [
    (b'{"question": "Why?",, }', "application/json", 422,
     "invalid JSON at character 20: Expecting property name enclosed in double quotes"),
    (b'{"question": "caf\xe9?"}', "application/json", 422,
     "invalid JSON: the body is not UTF-8 text"),
    (b'{"question": "Why is it so?"}', None, 415,
     "expected Content-Type application/json, got none"),
    (b"question=Why", "application/x-www-form-urlencoded", 415,
     "expected Content-Type application/json, got application/x-www-form-urlencoded"),
])
async def test_body_errors_say_what_is_wrong_in_one_shape(
        client: httpx.AsyncClient, auth: dict[str, str], path: str, content: bytes,
        content_type: str | None, status: int, message: str) -> None:
    headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
    response = await client.post(path, content=content, headers=headers)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] == message
    assert set(error) >= {"code", "message", "request_id"}
    assert response.headers["X-Request-ID"] == error["request_id"]


async def test_request_fields_are_not_coerced(client: httpx.AsyncClient,
                                              auth: dict[str, str]) -> None:
    response = await client.post("/api/v1/research", headers=auth,
                                 json={"question": "A valid question?", "max_sources": "3"})
    assert response.status_code == 422
    (field,) = response.json()["error"]["fields"]
    assert field["field"] == "max_sources" and field["message"] == "Input should be a valid integer"


async def test_limits_are_in_the_openapi_schema(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    create = schema["components"]["schemas"]["ResearchCreate"]["properties"]
    assert (create["question"]["minLength"], create["question"]["maxLength"]) == (3, 4000)
    assert (create["max_sources"]["minimum"], create["max_sources"]["maximum"]) == (1, 20)
    document = schema["components"]["schemas"]["DocumentCreate"]["properties"]
    assert document["content"]["maxLength"] == 200_000
    (limit,) = [p for p in schema["paths"]["/api/v1/research"]["get"]["parameters"]
                if p["name"] == "limit"]
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 100)


async def test_oversized_bodies_are_refused_with_413(servers: dict[str, str], settings: Settings,
                                                     auth: dict[str, str]) -> None:
    small = make_settings(servers, max_request_bytes=2048)
    async with api_client(small) as http:
        response = await http.post("/api/v1/documents", headers=auth,
                                   json={"title": "big", "content": "x" * 5000})
        assert response.status_code == 413
        assert response.json()["error"]["message"] == "request body exceeds 2048 bytes"

        # No Content-Length: the limit applies as the body streams in.
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"x" * 1024

        streamed = await http.post("/api/v1/documents", headers=auth, content=chunks())
        assert streamed.status_code == 413


async def test_unknown_and_foreign_runs_are_404(client: httpx.AsyncClient, settings: Settings,
                                                auth: dict[str, str]) -> None:
    missing = await client.get(f"/api/v1/research/{uuid.uuid4()}", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    run_id = (await client.post("/api/v1/research", json=QUESTION, headers=auth)).json()["id"]
    other = {"Authorization": f"Bearer {await new_key(settings, 'someone else')}"}
    assert (await client.get(f"/api/v1/research/{run_id}", headers=other)).status_code == 404
    malformed = await client.get("/api/v1/research/not-a-uuid", headers=auth)
    assert malformed.status_code == 422


async def test_list_is_paginated_newest_first_and_filtered(client: httpx.AsyncClient,
                                                           auth: dict[str, str]) -> None:
    ids = []
    for n in range(5):
        response = await client.post("/api/v1/research", headers=auth,
                                     json={"question": f"Question number {n}?"})
        ids.append(response.json()["id"])
    await client.post(f"/api/v1/research/{ids[0]}/cancel", headers=auth)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/research", params=params, headers=auth)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    cancelled = (await client.get("/api/v1/research", params={"status": "cancelled"},
                                  headers=auth)).json()
    assert [item["id"] for item in cancelled["items"]] == [ids[0]]
    bad = await client.get("/api/v1/research", params={"status": "done"}, headers=auth)
    assert bad.status_code == 422 and "status" in bad.json()["error"]["message"]
    cursor_error = await client.get("/api/v1/research", params={"cursor": "garbage"},
                                    headers=auth)
    assert cursor_error.status_code == 400
    assert "cursor 'garbage' is invalid" in cursor_error.json()["error"]["message"]


async def test_cancel_a_queued_run_then_409_once_finished(client: httpx.AsyncClient,
                                                          auth: dict[str, str]) -> None:
    run_id = (await client.post("/api/v1/research", json=QUESTION, headers=auth)).json()["id"]
    cancelled = await client.post(f"/api/v1/research/{run_id}/cancel", headers=auth)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = await client.post(f"/api/v1/research/{run_id}/cancel", headers=auth)
    assert again.status_code == 409
    assert again.json()["error"]["message"] == (
        f"research run {run_id} already cancelled; only queued or running runs can be "
        "cancelled")


async def test_log_lines_written_while_serving_name_the_request(client: httpx.AsyncClient,
                                                                auth: dict[str, str]) -> None:
    run_id = (await client.post("/api/v1/research", json=QUESTION, headers=auth)).json()["id"]
    audit = logging.getLogger("agent_service.audit")
    collected, level = Collected(), audit.level
    audit.addHandler(collected)
    audit.setLevel(logging.INFO)  # the suite's settings log warnings only
    try:
        await client.post(f"/api/v1/research/{run_id}/cancel",
                          headers={**auth, "X-Request-ID": "cancel-77"})
    finally:
        audit.removeHandler(collected)
        audit.setLevel(level)
    [line] = [e for e in collected.events if e["event"] == "run cancelled"]
    assert line["request_id"] == "cancel-77" and line["run_id"] == run_id


async def test_rate_limit_answers_429_with_retry_after(servers: dict[str, str],
                                                       settings: Settings,
                                                       auth: dict[str, str]) -> None:
    strict = make_settings(servers, rate_limit="3/minute")
    async with api_client(strict) as http:
        statuses = [(await http.get("/api/v1/research", headers=auth)).status_code
                    for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = await http.get("/api/v1/research", headers=auth)
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["error"]["code"] == "rate_limited"
        # Limits are per key: another key is unaffected.
        other = {"Authorization": f"Bearer {await new_key(settings, 'other')}"}
        assert (await http.get("/api/v1/research", headers=other)).status_code == 200


async def test_submissions_over_the_limit_are_refused_and_not_saved(
        servers: dict[str, str], settings: Settings, auth: dict[str, str]) -> None:
    # Sent at once: a key over its limit must not hold up or take the places of another
    # key's runs, and a refused run must not be saved.
    strict = make_settings(servers, rate_limit="3/minute")
    other = {"Authorization": f"Bearer {await new_key(settings, 'other')}"}
    async with api_client(strict) as http:
        answers = await asyncio.gather(
            *(http.post("/api/v1/research", json=QUESTION, headers=auth) for _ in range(5)),
            *(http.post("/api/v1/research", json=QUESTION, headers=other) for _ in range(2)))
    mine, theirs = answers[:5], answers[5:]
    assert sorted(a.status_code for a in mine) == [202, 202, 202, 429, 429]
    assert [a.status_code for a in theirs] == [202, 202]
    limited = next(a for a in mine if a.status_code == 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.json()["error"]["code"] == "rate_limited"
    accepted = {a.json()["id"] for a in answers if a.status_code == 202}
    engine = make_engine(settings.database_url.get_secret_value())
    try:
        async with engine.connect() as db:
            saved = {str(i) for i in (await db.execute(text("SELECT id FROM research_runs")))
                     .scalars()}
    finally:
        await engine.dispose()
    assert saved == accepted


async def test_invalid_submissions_count_against_the_limit_and_429_comes_first(
        servers: dict[str, str], auth: dict[str, str]) -> None:
    strict = make_settings(servers, rate_limit="2/minute")
    invalid = {"question": "", "max_sources": 99}
    async with api_client(strict) as http:
        statuses = [(await http.post("/api/v1/research", json=invalid, headers=auth)).status_code
                    for _ in range(3)]
        valid = await http.post("/api/v1/research", json=QUESTION, headers=auth)
    assert statuses == [422, 422, 429]
    assert valid.status_code == 429


async def test_a_body_that_is_not_json_is_refused_before_the_key_is_checked(
        client: httpx.AsyncClient) -> None:
    """FastAPI parses a JSON body before it runs any dependency: the README says so."""
    response = await client.post("/api/v1/research", content=b"{not json",
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("invalid JSON at character 1")


async def test_concurrent_checks_admit_exactly_the_limit(settings: Settings) -> None:
    client = redis.from_url(settings.redis_url.get_secret_value())
    limiter = RateLimiter(client, settings.redis_url.get_secret_value(), "5/minute")
    key = f"key-{uuid.uuid4()}"
    other = f"key-{uuid.uuid4()}"
    try:
        verdicts = await asyncio.gather(*(limiter.check(key) for _ in range(12)),
                                        *(limiter.check(other) for _ in range(3)))
    finally:
        await client.aclose()
    mine, theirs = verdicts[:12], verdicts[12:]
    assert mine[:5] == [None] * 5
    assert all(wait is not None and 1 <= wait <= 60 for wait in mine[5:])
    assert theirs == [None] * 3


async def test_documents_can_be_added_listed_and_deleted(client: httpx.AsyncClient,
                                                         auth: dict[str, str]) -> None:
    created = await client.post("/api/v1/documents", headers=auth, json={
        "title": "Rolling updates", "content": "maxUnavailable 0 keeps capacity.",
        "source": "https://kubernetes.io/docs/"})
    assert created.status_code == 201
    document = created.json()
    assert document["characters"] == len("maxUnavailable 0 keeps capacity.")
    listed = (await client.get("/api/v1/documents", headers=auth)).json()
    assert [d["id"] for d in listed["items"]] == [document["id"]]
    deleted = await client.delete(f"/api/v1/documents/{document['id']}", headers=auth)
    assert deleted.status_code == 204
    again = await client.delete(f"/api/v1/documents/{document['id']}", headers=auth)
    assert again.status_code == 404


async def test_openapi_describes_every_endpoint(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert set(schema["paths"]) >= {
        "/health", "/ready", "/api/v1/research", "/api/v1/research/{run_id}",
        "/api/v1/research/{run_id}/cancel", "/api/v1/research/{run_id}/events",
        "/api/v1/documents", "/api/v1/documents/{document_id}"}
    submit = schema["paths"]["/api/v1/research"]["post"]
    assert "202" in submit["responses"] and "401" in submit["responses"]


async def test_startup_objects_are_frozen_out_of_the_collectors_full_passes(
        settings: Settings) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    async with api_client(settings) as http:
        assert (await http.get("/health")).status_code == 200
        assert gc.get_freeze_count() > 10_000


async def test_an_unexpected_error_is_one_json_500_with_the_request_id(
        settings: Settings, auth: dict[str, str]) -> None:
    app = create_app(settings)

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/api/v1/broken", broken)
    errors = logging.getLogger("agent_service.errors")
    collected = Collected()
    errors.addHandler(collected)
    try:
        async with app.router.lifespan_context(app):
            # The transport re-raises whatever escapes the app: nothing must (a server would
            # log it a second time, as a plain traceback).
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                response = await http.get("/api/v1/broken",
                                          headers={**auth, "X-Request-ID": "bug-1"})
    finally:
        errors.removeHandler(collected)
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "bug-1"
    assert response.json()["error"] == {
        "code": "internal_error", "message": "internal error; quote the request id to support",
        "request_id": "bug-1"}
    (logged,) = collected.events
    assert logged["event"] == "unhandled error" and logged["request_id"] == "bug-1"


def _wrapped(error: Exception) -> Exception:
    """`error` as SQLAlchemy raises it: a DBAPIError raised from the driver's exception."""
    try:
        try:
            raise error
        except Exception as driver_error:
            raise sqlalchemy.exc.DBAPIError("SELECT 1", None, driver_error) from driver_error
    except sqlalchemy.exc.DBAPIError as wrapped:
        return wrapped


@pytest.mark.parametrize(("error", "status"), [
    (asyncpg.CannotConnectNowError("the database system is starting up"), 503),
    (asyncpg.TooManyConnectionsError("sorry, too many clients already"), 503),
    (asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
     503),
    (_wrapped(asyncpg.CannotConnectNowError("the database system is starting up")), 503),
    (_wrapped(asyncpg.TooManyConnectionsError("sorry, too many clients already")), 503),
    (sqlalchemy.exc.TimeoutError("QueuePool limit of size 10 overflow 0 reached"), 503),
    (RedisConnectionError("Connection refused"), 503),
    # Errors from the same libraries that are not an outage are bugs: 500.
    (_wrapped(asyncpg.UndefinedColumnError('column "tenant" does not exist')), 500),
    (ResponseError("WRONGTYPE"), 500),
])
async def test_outages_are_503_and_other_library_errors_500(settings: Settings,
                                                             error: Exception,
                                                             status: int) -> None:
    app = create_app(settings)

    async def failing() -> None:
        raise error

    app.add_api_route("/api/v1/outage", failing)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get("/api/v1/outage")
    assert response.status_code == status
    assert response.json()["error"]["code"] == ("unavailable" if status == 503
                                                else "internal_error")
    assert (response.headers.get("retry-after") == "5") is (status == 503)
    assert response.headers["X-Request-ID"] == response.json()["error"]["request_id"]
