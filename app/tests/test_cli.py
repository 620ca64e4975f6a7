"""The `agent-service` command line: keys are created once-visible, revoked, and audited."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
from devtools.servers import APP_DIR, service_env

from agent_service.core.config import Settings


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = service_env(settings.database_url.get_secret_value(),
                      settings.redis_url.get_secret_value())
    return subprocess.run([sys.executable, "-m", "agent_service", *args], env=env, cwd=APP_DIR,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.anyio
async def test_keys_are_created_usable_and_revoked(settings: Settings,
                                                   client: httpx.AsyncClient) -> None:
    created = cli(settings, "keys", "create", "--name", "ci-bot")
    assert created.returncode == 0, created.stderr
    lines = created.stdout.strip().splitlines()
    key_info = json.loads(lines[-1])
    assert key_info["key"].startswith(f"ak_{key_info['prefix']}_")
    audit = [json.loads(line) for line in lines[:-1] if line.startswith("{")]
    assert any(a["message"] == "api key created" and a["prefix"] == key_info["prefix"]
               and "key" not in a for a in audit), "audited, without the secret"
    headers = {"Authorization": f"Bearer {key_info['key']}"}
    assert (await client.get("/api/v1/research", headers=headers)).status_code == 200

    revoked = cli(settings, "keys", "revoke", key_info["prefix"])
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout.strip().splitlines()[-1])["revoked"] == "true"
    again = cli(settings, "keys", "revoke", key_info["prefix"])
    assert again.returncode == 1


def test_bad_settings_stop_the_command_with_the_reason(settings: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"PYTHONPATH": str(APP_DIR), "ENVIRONMENT": "production"})
    result = subprocess.run([sys.executable, "-m", "agent_service", "migrate"], env=env,
                            cwd=APP_DIR, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DATABASE_URL is unset or the development default" in result.stderr
