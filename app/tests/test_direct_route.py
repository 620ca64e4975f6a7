"""DirectRoute (api/direct_route.py) answers every input as FastAPI's own route class does.

The same endpoint is declared twice, once per route class, and each input is sent to both: the
status, the validation errors (location and type) and the result must agree.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.routing import APIRoute

from agent_service.api.direct_route import DirectRoute
from agent_service.api.schemas import ResearchCreate

pytestmark = pytest.mark.anyio


async def caller(request: Request) -> str:
    if request.headers.get("authorization") != "Bearer good":
        raise HTTPException(401, "missing API key")
    return "good"


async def submit(body: ResearchCreate, key: str = Depends(caller)) -> Response:
    return Response(body.model_dump_json(), 202, media_type="application/json")


async def read(run_id: uuid.UUID, request: Request, key: str = Depends(caller)) -> Response:
    return Response(f'{{"id": "{run_id}", "path": "{request.url.path}"}}',
                    media_type="application/json")


def _add(router: APIRouter, prefix: str, route_class: type[APIRoute]) -> None:
    router.add_api_route(f"{prefix}/runs", submit, methods=["POST"], status_code=202,
                         route_class_override=route_class)
    router.add_api_route(f"{prefix}/runs/{{run_id}}", read, methods=["GET"],
                         route_class_override=route_class)


def _app() -> FastAPI:
    """The endpoints as plain routes, as DirectRoutes of an included router, and as
    DirectRoutes of the application's own router (FastAPI runs those two differently)."""
    app = FastAPI()
    for prefix, route_class in (("/plain", APIRoute), ("/direct", DirectRoute)):
        router = APIRouter()
        _add(router, prefix, route_class)
        app.include_router(router)
    _add(app.router, "/direct-app", DirectRoute)
    return app


DIRECT = ["/direct", "/direct-app"]


def _outcome(response: httpx.Response) -> tuple[int, Any]:
    body = response.json()
    if response.status_code != 422:
        return response.status_code, body.get("detail", body) if isinstance(body, dict) \
            else body
    # Messages may word a JSON syntax error differently; where and what kind must agree.
    return 422, sorted((tuple(str(p) for p in e["loc"][:2]), e["type"])
                       for e in body["detail"])


GOOD = {"Authorization": "Bearer good"}
JSON = {**GOOD, "Content-Type": "application/json"}
SUBMISSIONS: list[tuple[dict[str, str], bytes]] = [
    (JSON, b'{"question": "How do rolling updates work?", "max_sources": 3}'),
    (JSON, b'{"question": "How?", "options": {"tags": ["a", "b c"]}}'),
    (JSON, b'{"question": "ab", "max_sources": 99, "extra": 1}'),
    (JSON, b'{"question": "nul \\u0000 here"}'),
    (JSON, b'{"max_sources": "many"}'),
    (JSON, b"[1, 2]"),
    (JSON, b'"a string"'),
    (JSON, b"{not json"),
    (JSON, b""),
    (JSON, b"null"),
    (JSON, b'{"question": "Why \xff\xfe?"}'),
    ({**GOOD, "Content-Type": "application/vnd.api+json"}, b'{"question": "Why so?"}'),
    ({**GOOD, "Content-Type": "text/plain"}, b'{"question": "Why so?"}'),
    ({**GOOD, "Content-Type": "application/json; charset=utf-8"}, b'{"question": "Why?"}'),
    ({"Content-Type": "application/json"}, b'{"question": "How do rolling updates work?"}'),
    ({"Content-Type": "application/json"}, b"{not json"),
]


@pytest.mark.parametrize("direct_prefix", DIRECT)
@pytest.mark.parametrize(("headers", "body"), SUBMISSIONS)
async def test_a_body_is_judged_the_same_by_both_route_classes(headers: dict[str, str],
                                                               body: bytes,
                                                               direct_prefix: str) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()),
                                 base_url="http://test") as client:
        plain = await client.post("/plain/runs", content=body, headers=headers)
        direct = await client.post(f"{direct_prefix}/runs", content=body, headers=headers)
    assert _outcome(direct) == _outcome(plain)


@pytest.mark.parametrize("direct_prefix", DIRECT)
@pytest.mark.parametrize(("path", "headers"), [
    ("/runs/3f1c1b9e-5a43-4c47-8d39-0d9b1d3a9e11", GOOD),
    ("/runs/3F1C1B9E5A434C478D390D9B1D3A9E11", GOOD),
    ("/runs/not-a-uuid", GOOD),
    ("/runs/not-a-uuid", {}),
])
async def test_path_parameters_and_auth_are_judged_the_same(path: str,
                                                            headers: dict[str, str],
                                                            direct_prefix: str) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()),
                                 base_url="http://test") as client:
        plain = await client.get(f"/plain{path}", headers=headers)
        direct = await client.get(f"{direct_prefix}{path}", headers=headers)
    outcome = _outcome(direct)
    if plain.status_code == 200:
        assert direct.json()["path"] == f"{direct_prefix}{path}"
        outcome = (200, {**direct.json(), "path": plain.json()["path"]})
    assert outcome == _outcome(plain)


async def test_the_schema_documents_both_route_classes_alike() -> None:
    paths = _app().openapi()["paths"]
    for path, method in (("/runs", "post"), ("/runs/{run_id}", "get")):
        plain = paths[f"/plain{path}"][method]
        for prefix in DIRECT:
            direct = paths[f"{prefix}{path}"][method]
            for key in ("requestBody", "parameters", "responses"):
                assert direct.get(key) == plain.get(key), (prefix, key)


def test_unsupported_endpoints_are_refused_when_declared() -> None:
    router = APIRouter(route_class=DirectRoute)

    async def paged(limit: int = 10) -> Response:
        return Response()

    with pytest.raises(TypeError, match="query, header and cookie parameters"):
        router.add_api_route("/paged", paged)

    async def needs_limit(limit: int) -> int:
        return limit

    async def nested(value: int = Depends(needs_limit)) -> Response:
        return Response()

    with pytest.raises(TypeError, match="must be an async function of the Request alone"):
        router.add_api_route("/nested", nested)
