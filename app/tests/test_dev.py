"""`make dev` as the README tells a newcomer to use it: start it, run what its banner prints
(the curl examples, the key commands), stop it with Ctrl-C, and nothing is left running."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from devtools.servers import APP_DIR, free_port

ROOT = APP_DIR.parent
AGENT_SERVICE = Path(sys.executable).parent / "agent-service"


@pytest.fixture
def dev() -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """`make dev`'s command, on free ports; yields the process and its output so far."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "app"), "API_PORT": str(free_port()),
           "WORKER_METRICS_PORT": str(free_port())}
    process = subprocess.Popen([sys.executable, str(ROOT / "app" / "devtools" / "dev.py")],
                               env=env, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    assert process.stdout is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Ctrl-C stops"):
            break
    try:
        yield process, lines
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
        process.stdout.close()


def run(command: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                            timeout=60, env=env, check=False)
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    return result.stdout


@pytest.mark.slow
def test_make_dev_runs_what_its_banner_says(
        dev: tuple[subprocess.Popen[str], list[str]]) -> None:
    process, lines = dev
    banner = "\n".join(lines)
    assert "agent-service is running" in banner, banner
    # Every log line is a JSON document, whichever process wrote it.
    logs = [line for line in lines if line.startswith("{")]
    assert logs and all(json.loads(line)["message"] for line in logs)
    assert not [line for line in lines if re.match(r"^(INFO|WARNING|ERROR|\d{4}-\d\d-\d\d )",
                                                    line)]

    # The curl examples, as printed (the continuation lines joined).
    commands = re.findall(r"^  (curl .*?|RUN=.*?)(?=\n  [A-Zc]|\n\n)", banner,
                          re.MULTILINE | re.DOTALL)
    assert len(commands) == 4, commands
    document = json.loads(run(commands[0]))
    assert document["title"] == "Rollouts"
    script = "\n".join(commands[1:3]).replace("curl -s -N", "timeout 20 curl -s -N")
    events = run(script + "\necho")
    assert "event: completed" in events, events
    status = json.loads(run("\n".join([commands[1], commands[3]])))
    assert status["status"] == "succeeded" and "[1]" in status["answer"]

    # The key commands, with the export line it prints.
    (export,) = [line.strip() for line in lines if line.strip().startswith("export ")]
    env = {**os.environ}
    for assignment in shlex.split(export.removeprefix("export ")):
        name, _, value = assignment.partition("=")
        env[name] = value
    keys = json.loads(run(f"{AGENT_SERVICE} keys list", env))
    assert [k["name"] for k in keys] == ["make dev"] and keys[0]["revoked"] is False
    created = json.loads(run(f"{AGENT_SERVICE} keys create --name laptop", env))
    assert json.loads(run(f"{AGENT_SERVICE} keys revoke {created['key']}", env)) == {
        "prefix": created["prefix"], "revoked": True}
    listed = {k["name"]: k["revoked"] for k in json.loads(run(f"{AGENT_SERVICE} keys list", env))}
    assert listed == {"make dev": False, "laptop": True}

    # Ctrl-C stops everything it started: the API's port is free again, and so is the
    # Postgres socket directory's server.
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0
    port = int(re.search(r"API\s+http://127.0.0.1:(\d+)", banner).group(1))  # type: ignore[union-attr]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    socket_dir = re.search(r"host=(\S+?)['\s]", export)
    assert socket_dir and not Path(socket_dir.group(1)).exists()
