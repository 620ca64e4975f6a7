"""A worker's HTTP endpoint: Prometheus metrics, and `/health` for the kubelet.

The metrics server runs in a thread, so answering it proves nothing about the worker's event
loop. `/health` does: a task on the loop beats every few seconds, and the endpoint answers 503
once the last beat is older than the limit (a blocked or dead loop), so the kubelet restarts the
pod and its runs are redelivered.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import ThreadingHTTPServer

from prometheus_client import MetricsHandler

BEAT_SECONDS = 2.0


class Liveness:
    def __init__(self, limit_seconds: float) -> None:
        self.limit_seconds = limit_seconds
        self.last_beat = time.monotonic()

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self.last_beat

    async def run(self) -> None:
        """Beats from the event loop until cancelled."""
        while True:
            self.beat()
            await asyncio.sleep(BEAT_SECONDS)


def serve(port: int, liveness: Liveness, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Starts the metrics and health server in a daemon thread."""

    class Handler(MetricsHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?", 1)[0] != "/health":
                super().do_GET()
                return
            age = liveness.age()
            healthy = age <= liveness.limit_seconds
            body = json.dumps({"status": "ok" if healthy else "event loop stalled",
                               "seconds_since_beat": round(age, 3)}).encode()
            self.send_response(200 if healthy else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # probes every few seconds would flood the logs

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
