"""OpenTelemetry tracing, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.

With an endpoint, each process exports spans over OTLP/HTTP: FastAPI requests, SQLAlchemy
queries (at the asyncpg driver: the SQLAlchemy instrumentation does not support SQLAlchemy 2.1
yet), Redis commands and outgoing HTTP calls (the LLM SDKs' aiohttp transport), plus one span per
research run in the worker. The API hands the trace context to the worker inside the job, so a
run's trace starts at the request that queued it. Every run span carries `agent.run_id`, so a slow
run is found in the trace backend by its id. Sampling follows the standard OTEL_TRACES_SAMPLER /
OTEL_TRACES_SAMPLER_ARG variables.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from agent_service.core.config import Settings

RUN_ID = "agent.run_id"
_tracer = trace.get_tracer("agent_service")
_state = {"configured": False}


def tracing_enabled(settings: Settings) -> bool:
    return bool(settings.otel_exporter_otlp_endpoint)


def configure_tracing(settings: Settings, role: str,
                      exporter: SpanExporter | None = None) -> bool:
    """Installs the tracer provider and the library instrumentations once per process.

    `exporter` replaces the OTLP exporter (tests). Returns whether tracing is on.
    """
    if exporter is None and not tracing_enabled(settings):
        return False
    if _state["configured"]:
        return True
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    provider = TracerProvider(resource=Resource.create({
        SERVICE_NAME: f"agent-service-{role}", "service.namespace": "agent-platform",
        "deployment.environment.name": settings.environment}))
    # The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (and _HEADERS) itself.
    provider.add_span_processor(BatchSpanProcessor(exporter or OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    RedisInstrumentor().instrument()
    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    AioHttpClientInstrumentor().instrument()
    _state["configured"] = True
    return True


def instrument_app(app: FastAPI) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # Probes and scrapes would be most of the spans and tell nothing.
    FastAPIInstrumentor.instrument_app(app, excluded_urls="/health,/ready,/metrics")


def trace_carrier() -> dict[str, str]:
    """The current trace context as W3C headers, to travel inside a job."""
    carrier: dict[str, str] = {}
    if _state["configured"]:
        propagate.inject(carrier)
    return carrier


def tag_run(run_id: str) -> None:
    if _state["configured"]:
        trace.get_current_span().set_attribute(RUN_ID, run_id)


# Without tracing these cost nothing: the hot paths call them on every request and run.
@contextmanager
def run_span(run_id: str, carrier: dict[str, str] | None, **attributes: Any) -> Iterator[None]:
    """The span of one run attempt in a worker, child of the request that queued the run."""
    if not _state["configured"]:
        yield
        return
    context = propagate.extract(carrier or {})
    with _tracer.start_as_current_span("research.run", context=context,
                                       kind=trace.SpanKind.CONSUMER,
                                       attributes={RUN_ID: run_id, **attributes}):
        yield


@contextmanager
def llm_span(provider: str, model: str) -> Iterator[None]:
    if not _state["configured"]:
        yield
        return
    with _tracer.start_as_current_span("llm.complete", kind=trace.SpanKind.CLIENT,
                                       attributes={"gen_ai.system": provider,
                                                   "gen_ai.request.model": model}):
        yield
