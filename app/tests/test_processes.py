"""The API as a real server process: schema fuzzing, metrics across several server processes."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from devtools.servers import APP_DIR, free_port, service_env, stop_process, wait_until_ready
from support import new_key

from agent_service.core.config import Settings

ST = Path(sys.executable).parent / "st"


def serve(settings: Settings, tmp_path: Path, workers: int = 1) -> Iterator[str]:
    port = free_port()
    env = service_env(settings.database_url.get_secret_value(),
                      settings.redis_url.get_secret_value(),
                      PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"), LOG_LEVEL="WARNING",
                      RATE_LIMIT="100000/minute")
    log = tmp_path / f"api-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent_service", "api", "--host", "127.0.0.1", "--port",
             str(port), "--workers", str(workers)], env=env, cwd=APP_DIR,
            stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_ready(f"{url}/ready", process)
        except RuntimeError as error:
            raise AssertionError(log.read_text()) from error
        yield url
    finally:
        stop_process(process)


@pytest.fixture
def key(settings: Settings) -> str:
    return asyncio.run(new_key(settings))


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[str]:
    yield from serve(settings, tmp_path)


@pytest.mark.slow
def test_no_input_from_the_schema_makes_the_api_fail(server: str, key: str) -> None:
    result = subprocess.run(
        [str(ST), "run", f"{server}/openapi.json", "--checks", "not_a_server_error",
         "--header", f"Authorization: Bearer {key}", "--phases", "fuzzing",
         # A fixed seed and a bounded count keep the run reproducible and the suite fast;
         # raise --max-examples locally for a deeper search.
         "--max-examples", "12", "--seed", "7", "--request-timeout", "10",
         "--max-failures", "5"],
        capture_output=True, text=True, timeout=110)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.slow
def test_metrics_add_up_across_server_processes(settings: Settings, tmp_path: Path,
                                                key: str) -> None:
    for url in serve(settings, tmp_path, workers=2):
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, timeout=10) as http:
            for _ in range(40):
                assert http.get("/api/v1/research", headers=headers).status_code == 200
            text = http.get("/metrics").text
        pattern = (r'http_requests_total\{method="GET",route="/api/v1/research",'
                   r'status="200"\} (\d+\.\d+)')
        served = re.search(pattern, text)
        assert served and float(served.group(1)) == 40.0, text[:2000]
