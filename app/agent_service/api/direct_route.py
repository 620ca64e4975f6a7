"""A route class for the hottest endpoints: FastAPI's routing, OpenAPI and error handlers,
without its general-purpose parameter solving on every request.

FastAPI resolves an endpoint's parameters per request through a generic dependency walk (body
parsed by the json module and validated again as Python objects, sub-dependencies solved,
exit stacks opened for dependencies with `yield`). On submit and read that walk cost more CPU
than the service's own work. A `DirectRoute` reads the same endpoint signature once, when the
route is built, and per request does only what that signature needs:

- dependencies that take just the `Request` are awaited in order, before anything else (as
  FastAPI does, so a missing key is a 401 even when the body is also bad);
- path parameters are validated by FastAPI's own function, so their errors read the same;
- a body model is validated straight from the request bytes by pydantic (`model_validate_json`),
  with FastAPI's error locations (`body`, field...) and its rule that only JSON content types
  are parsed as JSON.

The OpenAPI schema is generated from the endpoint signature as for any route, so it stays
accurate by construction. Anything the class does not support (query or header parameters,
dependencies with parameters of their own or with `yield`, form bodies) is refused when the
route is declared, not discovered per request.
"""

from __future__ import annotations

import email.message
import functools
import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request
from fastapi._compat import ModelField
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic_core import PydanticUndefined as Undefined
from starlette.responses import Response
from starlette.types import Receive, Scope, Send


@dataclass(frozen=True)
class _Plan:
    request_param: str | None
    dependencies: tuple[tuple[str, Callable[[Request], Awaitable[Any]]], ...]
    body: ModelField | None
    body_model: type[BaseModel] | None


def _plan(route: APIRoute) -> _Plan:
    dependant: Dependant = route.dependant
    where = f"{route.methods} {route.path}"
    if dependant.query_params or dependant.header_params or dependant.cookie_params:
        raise TypeError(f"DirectRoute {where}: query, header and cookie parameters are not "
                        "supported; declare the route as a plain APIRoute")
    dependencies = []
    for sub in dependant.dependencies:
        if (sub.dependencies or sub.path_params or sub.query_params or sub.header_params
                or sub.body_params or sub.request_param_name is None or sub.name is None
                # A generator (`yield`) dependency is not a coroutine function either.
                or not inspect.iscoroutinefunction(sub.call)):
            raise TypeError(f"DirectRoute {where}: dependency {sub.call!r} must be an async "
                            "function of the Request alone")
        dependencies.append((sub.name, sub.call))
    body, body_model = None, None
    if dependant.body_params:
        body = dependant.body_params[0]
        annotation = body.field_info.annotation
        if len(dependant.body_params) > 1 or route._embed_body_fields or not (
                isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            raise TypeError(f"DirectRoute {where}: the body must be one pydantic model")
        body_model = annotation
    return _Plan(dependant.request_param_name, tuple(dependencies), body, body_model)


@functools.lru_cache(maxsize=64)
def _is_json(content_type: str) -> bool:
    # FastAPI's rule: a body with a JSON media type (or `+json`) is parsed; any other is
    # validated as raw bytes and so rejected by the model. Cached: clients send a handful of
    # distinct headers, and parsing one costs more than validating a small body.
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json"))


def _as_fastapi_reads_it(raw: bytes, as_json: bool) -> Any:
    """The body as FastAPI hands it to validation, with its errors for unreadable JSON.

    Only the error path comes here: a body that fails the fast validation is judged again by
    FastAPI's own functions, so a client sees exactly the errors a plain route would give.
    """
    if not raw:
        return Undefined
    if not as_json:
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body", error.pos), "msg": "JSON decode error",
              "input": {}, "ctx": {"error": error.msg}}], body=error.doc) from error
    except ValueError as error:  # not UTF-8
        raise HTTPException(400, "There was an error parsing the body") from error


class DirectRoute(APIRoute):
    """Use as `route_class` for endpoints that only take the Request, path parameters, one body
    model and Request-only dependencies, and return a Response (see the module docstring)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if self.max_body_size is not None:
            return  # keeps FastAPI's wrapper, which enforces the route's own body limit
        handler = self.get_route_handler()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            response = await handler(Request(scope, receive, send))
            await response(scope, receive, send)

        # On the application's own router this is what runs per request. FastAPI's wrapper
        # around the handler opens two exit stacks for dependencies with `yield` (refused here)
        # and catches exceptions that ExceptionMiddleware, one layer up, handles the same way.
        # (In an included router FastAPI wraps get_route_handler itself: correct, only slower.)
        self.app = app

    async def before_validation_errors(self, request: Request, values: dict[str, Any]) -> None:
        """Runs after the dependencies and before a 422 for the path or the body, with the
        values solved so far. For a route whose endpoint does part of a dependency's work (submit
        charges its rate limit in the same batch as its insert), so that a request that never
        reaches the endpoint gets that work done too. It may raise instead of the 422."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        plan = _plan(self)
        path_params = self.dependant.path_params
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            kwargs: dict[str, Any] = {}
            body: Any = Undefined
            if plan.body is not None and plan.body_model is not None:
                raw = await request.body()
                as_json = _is_json(request.headers.get("content-type", ""))
                try:
                    if not as_json or not raw:
                        raise ValueError("not a JSON body")
                    body = plan.body_model.model_validate_json(raw)
                except ValueError:  # pydantic's ValidationError is one
                    # FastAPI rejects unreadable JSON before it runs any dependency.
                    body = _as_fastapi_reads_it(raw, as_json)
                    invalid = True
                else:
                    invalid = False
            for name, dependency in plan.dependencies:
                kwargs[name] = await dependency(request)
            values, errors = request_params_to_args(path_params, request.path_params)
            kwargs.update(values)
            if plan.body is not None:
                if invalid:
                    values, body_errors = await request_body_to_args(
                        [plan.body], body, embed_body_fields=False)
                    errors += body_errors
                    body = values.get(plan.body.name)
                kwargs[plan.body.name] = body
            if errors:
                await self.before_validation_errors(request, kwargs)
                raise RequestValidationError(errors, body=body)
            if plan.request_param is not None:
                kwargs[plan.request_param] = request
            response = await endpoint(**kwargs)
            if not isinstance(response, Response):
                raise TypeError(f"DirectRoute endpoint {endpoint.__name__} must return a "
                                f"Response, not {type(response).__name__}")
            return response

        return handler
