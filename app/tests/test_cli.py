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


def audit_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]


@pytest.mark.anyio
async def test_keys_are_created_usable_listed_and_revoked(settings: Settings,
                                                          client: httpx.AsyncClient) -> None:
    created = cli(settings, "keys", "create", "--name", "ci-bot")
    assert created.returncode == 0, created.stderr
    # stdout is exactly one JSON document; the audit line is on stderr, without the secret.
    key_info = json.loads(created.stdout)
    assert key_info["key"].startswith(f"ak_{key_info['prefix']}_")
    assert any(a["message"] == "api key created" and a["prefix"] == key_info["prefix"]
               and "key" not in a for a in audit_lines(created))
    headers = {"Authorization": f"Bearer {key_info['key']}"}
    assert (await client.get("/api/v1/research", headers=headers)).status_code == 200

    listed = cli(settings, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    (entry,) = [k for k in json.loads(listed.stdout) if k["prefix"] == key_info["prefix"]]
    assert entry["name"] == "ci-bot" and entry["revoked"] is False
    assert (entry["tenant"], entry["scopes"]) == ("default", ["runs:write", "documents:write"])
    assert key_info["key"] not in listed.stdout

    revoked = cli(settings, "keys", "revoke", f"ak_{key_info['prefix']}")
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout) == {"prefix": key_info["prefix"], "revoked": True}
    assert any(a["message"] == "api key revoked" for a in audit_lines(revoked))

    again = cli(settings, "keys", "revoke", key_info["key"])
    assert again.returncode == 1
    outcome = json.loads(again.stdout)
    assert outcome["revoked"] is False and outcome["reason"].startswith("already revoked at ")
    # Nothing was revoked, so nothing is audited as revoked.
    assert not any(a["message"] == "api key revoked" for a in audit_lines(again))


def test_a_key_is_created_for_a_tenant_with_the_scopes_given(settings: Settings) -> None:
    created = cli(settings, "keys", "create", "--name", "ops", "--tenant", "acme",
                  "--scope", "admin", "--scope", "runs:write", "--scope", "admin")
    assert created.returncode == 0, created.stderr
    info = json.loads(created.stdout)
    assert (info["tenant"], info["scopes"]) == ("acme", ["admin", "runs:write"])
    assert any(a["message"] == "api key created" and a["tenant"] == "acme"
               for a in audit_lines(created))


def test_an_unknown_scope_is_a_usage_error_naming_it(settings: Settings) -> None:
    result = cli(settings, "keys", "create", "--name", "x", "--scope", "everything")
    assert result.returncode == 2
    # typer draws the message in a box; its border characters are not part of it.
    said = " ".join(result.stderr.replace("│", " ").split())
    assert "unknown scope 'everything'; allowed: runs:write, documents:write, admin" in said
    assert result.stdout == ""


@pytest.mark.parametrize(("argument", "reason"), [
    ("ak_00000000", "no key has the prefix 00000000"),
    ("not-a-key", "expected a key (ak_<8 hex>_<secret>) or its prefix (ak_<8 hex> or <8 hex>)"),
])
def test_revoking_nothing_says_why(settings: Settings, argument: str, reason: str) -> None:
    result = cli(settings, "keys", "revoke", argument)
    assert result.returncode == 1
    assert json.loads(result.stdout)["reason"] == reason


def test_a_whole_key_must_match_its_hash(settings: Settings) -> None:
    created = json.loads(cli(settings, "keys", "create", "--name", "victim").stdout)
    forged = f"ak_{created['prefix']}_not-the-secret"
    result = cli(settings, "keys", "revoke", forged)
    assert result.returncode == 1
    assert json.loads(result.stdout)["reason"] == (
        f"that is not the key with the prefix {created['prefix']}")


def test_bad_settings_stop_the_command_with_the_reason(settings: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"PYTHONPATH": str(APP_DIR), "ENVIRONMENT": "production"})
    result = subprocess.run([sys.executable, "-m", "agent_service", "migrate"], env=env,
                            cwd=APP_DIR, capture_output=True, text=True, timeout=60)
    # One line per problem, no traceback, exit 3.
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "agent-service: DATABASE_URL is unset or the development default; set it (or "
        "ENVIRONMENT=development for local runs)"]


def test_bad_values_are_named_with_their_secrets_masked(settings: Settings) -> None:
    env = service_env(settings.database_url.get_secret_value(),
                      settings.redis_url.get_secret_value())
    env.update({"WORKER_CONCURRENCY": "lots", "RATE_LIMIT": "fast", "ENVIRONMENT": "production",
                "DATABASE_URL": "postgresql://agent:hunter2@db.example.com/agent",
                "LLM_PROVIDERS": "openai"})
    result = subprocess.run([sys.executable, "-m", "agent_service", "worker"], env=env,
                            cwd=APP_DIR, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert "agent-service: WORKER_CONCURRENCY = 'lots' is invalid: Input should be a valid " \
           "integer, unable to parse string as an integer" in lines
    assert any(line.startswith("agent-service: RATE_LIMIT = 'fast' is invalid") for line in lines)
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr
    # Rules over several variables run once every variable parses; this one needs no value.
    fixed = {**env, "WORKER_CONCURRENCY": "4", "RATE_LIMIT": "60/minute"}
    result = subprocess.run([sys.executable, "-m", "agent_service", "worker"], env=fixed,
                            cwd=APP_DIR, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "agent-service: LLM_PROVIDERS includes openai but OPENAI_API_KEY is empty"]
