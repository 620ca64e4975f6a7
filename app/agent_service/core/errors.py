"""One JSON error shape for every failure: {"error": {"code", "message", "request_id", ...}}."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import redis.exceptions
import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from agent_service.core.outage import is_outage
from agent_service.core.request_id import current_request_id

log = structlog.get_logger(__name__)

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
         415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited",
         500: "internal_error", 503: "unavailable"}
# The exception families an outage of Postgres or Redis arrives in. Those that are an outage
# (core/outage.py) are answered 503 + Retry-After, since the request may succeed later; the
# rest of them are bugs, answered 500 by the edge middleware.
UNAVAILABLE_CANDIDATES = (redis.exceptions.RedisError, sqlalchemy.exc.SQLAlchemyError,
                          asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
RETRY_AFTER_SECONDS = 5


def error_body(status: int, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": CODES.get(status, "error"), "message": message,
                      "request_id": current_request_id.get(), **extra}}


# What FastAPI answers when it cannot decode a JSON body at all (for JSON, that is not UTF-8).
_UNPARSABLE_BODY = "There was an error parsing the body"


def _json_content_type(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _body_problem(request: Request, errors: Sequence[Any]) -> tuple[int, str] | None:
    """A body that is not JSON at all, said in words, instead of a field error about it."""
    for error in errors:
        if error["type"] == "json_invalid":
            position = error["loc"][-1]
            reason = (error.get("ctx") or {}).get("error", "not JSON")
            return 422, f"invalid JSON at character {position}: {reason}"
        if tuple(error["loc"]) == ("body",) and not _json_content_type(request):
            sent = request.headers.get("content-type") or "none"
            return 415, f"expected Content-Type application/json, got {sent}"
    return None


INTERNAL_ERROR = "internal error; quote the request id to support"


def install_error_handlers(app: FastAPI) -> None:
    """The handlers for errors a route raises on purpose or a dependency outage; an unexpected
    exception is answered by the edge middleware (api/middleware.py), which sees it first."""
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY and \
                _json_content_type(request):
            return JSONResponse(error_body(422, "invalid JSON: the body is not UTF-8 text"),
                                status_code=422)
        return JSONResponse(error_body(exc.status_code, str(exc.detail)),
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if (problem := _body_problem(request, exc.errors())) is not None:
            status, message = problem
            return JSONResponse(error_body(status, message), status_code=status)
        fields = [{"field": ".".join(str(p) for p in err["loc"] if p != "body"),
                   "message": err["msg"], "type": err["type"]} for err in exc.errors()]
        summary = "; ".join(f"{f['field'] or 'body'}: {f['message']}" for f in fields)
        return JSONResponse(error_body(422, f"invalid request: {summary}", fields=fields),
                            status_code=422)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not is_outage(exc):
            raise exc
        log.warning("dependency unavailable", path=request.url.path,
                    error=f"{type(exc).__name__}: {exc}")
        return JSONResponse(error_body(503, "a backing service is unavailable; retry later"),
                            status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    for error in UNAVAILABLE_CANDIDATES:
        app.add_exception_handler(error, unavailable)
