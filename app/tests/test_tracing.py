"""Tracing end to end: real API and worker processes export OTLP/HTTP to a local receiver, and a
run's spans carry its id and continue the trace of the request that queued it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from devtools.servers import APP_DIR, free_port, service_env, stop_process, wait_until_ready
from llm_server import FakeLLM, fake_llm
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from support import new_key

from agent_service.core.config import Settings

pytestmark = pytest.mark.timeout(120)


class Receiver:
    """An OTLP/HTTP trace endpoint that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                receiver.add(request, self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, request: ExportTraceServiceRequest, path: str) -> None:
        assert path == "/v1/traces", path
        for resource_spans in request.resource_spans:
            service = next(a.value.string_value for a in resource_spans.resource.attributes
                           if a.key == "service.name")
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: (a.value.string_value or a.value.int_value)
                                  for a in span.attributes}
                    with self.lock:
                        self.spans.append({"service": service, "name": span.name,
                                           "trace_id": span.trace_id.hex(),
                                           "attributes": attributes})

    def find(self, service: str, name: str | None = None,
             **attributes: Any) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.spans if s["service"] == service
                    and (name is None or s["name"] == name)
                    and all(s["attributes"].get(k) == v for k, v in attributes.items())]


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with fake_llm() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], ready: str) -> Iterator[None]:
    child = subprocess.Popen([sys.executable, "-m", "agent_service", *args], env=env,
                             cwd=APP_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_ready(ready, child, 60)
        yield
    finally:
        stop_process(child, 20)


def until(found: Any, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := found()):
        assert time.monotonic() < deadline, "spans did not arrive in time"
        time.sleep(0.2)
    return value


@pytest.mark.anyio
async def test_a_run_is_traced_from_request_to_worker(settings: Settings, receiver: Receiver,
                                                      llm: FakeLLM) -> None:
    api_port, metrics_port = free_port(), free_port()
    env = service_env(settings.database_url.get_secret_value(),
                      settings.redis_url.get_secret_value(),
                      OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_BSP_SCHEDULE_DELAY="100",
                      WORKER_METRICS_PORT=str(metrics_port), LOG_LEVEL="WARNING",
                      LLM_PROVIDERS="openai", OPENAI_API_KEY="sk-test",
                      OPENAI_BASE_URL=f"{llm.base_url}/v1")
    key = await new_key(settings, "tracing")
    api = f"http://127.0.0.1:{api_port}"
    with process(["api", "--host", "127.0.0.1", "--port", str(api_port)], env,
                 f"{api}/health"), \
            process(["worker"], env, f"http://127.0.0.1:{metrics_port}/metrics"):
        headers = {"Authorization": f"Bearer {key}"}
        run_id = httpx.post(f"{api}/api/v1/research", headers=headers,
                            json={"question": "How are runs traced?"}).json()["id"]
        httpx.get(f"{api}/ready")

        (request,) = until(lambda: receiver.find("agent-service-api", **{
            "agent.run_id": run_id}))
        (run,) = until(lambda: receiver.find("agent-service-worker", "research.run",
                                             **{"agent.run_id": run_id}))
        # The worker continues the trace the request started.
        assert run["trace_id"] == request["trace_id"]
        assert run["attributes"]["agent.attempt"] == 1
        until(lambda: receiver.find("agent-service-worker", "llm.complete",
                                    **{"gen_ai.system": "openai"}))
        trace = [s for s in receiver.spans if s["trace_id"] == run["trace_id"]]
        # The LLM SDK's own HTTP call, inside the run's trace (attribute names of the
        # instrumentation's default, pre-stable HTTP semantic conventions).
        calls = [s["attributes"] for s in trace if s["attributes"].get("http.method") == "POST"
                 and str(s["attributes"].get("http.url")).endswith("/v1/chat/completions")]
        assert calls and calls[0]["http.status_code"] == 200, trace
        assert any(s["attributes"].get("db.system") == "postgresql" for s in trace)
        assert any(s["attributes"].get("db.system") == "redis" for s in trace)
    # Probes and scrapes are not traced.
    assert not [s for s in receiver.spans
                if any(p in s["name"] for p in ("/health", "/ready", "/metrics"))]
