"""How long a backup and a restore of a realistic database take, against a real Postgres.

Fills the service's schema with `RUNS` research runs (answers, sources and six events each, as a
worker writes them), API keys of ten tenants and a knowledge base; backs it up with the exact
script the local stack's CronJob runs; then restores the dump with `agent-service restore dump`
into new databases, with one and with two pg_restore jobs, side by side. Prints one JSON
document: sizes, the backup's duration, and each restore's and verification's duration, against
the 30-minute recovery time objective.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import asyncpg
from devtools.servers import APP_DIR, postgres_binaries, postgres_process

from agent_service.db.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.kubernetes.postgres_backup import BACKUP_SCRIPT  # noqa: E402

RUNS = int(os.environ.get("BENCH_RESTORE_RUNS", "100000"))
RTO_SECONDS = 30 * 60
PG_BIN = postgres_binaries()
_ANSWER = "The rolling update keeps capacity while pods are replaced one by one. " * 20
_SOURCES = json.dumps([{"number": i + 1, "document_id": f"0b6f3c1e-8d4a-4f57-9c1b-2a7d5e9f{i:04d}",
                        "title": f"Runbook {i}: rolling updates and disruption budgets",
                        "source": f"https://docs.example.com/runbooks/{i}"} for i in range(5)])


async def fill(url: str) -> dict[str, int]:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "INSERT INTO api_keys (id, name, prefix, key_hash, tenant, scopes) "
            "SELECT gen_random_uuid(), 'tenant ' || n, lpad(to_hex(n), 8, '0'), "
            "md5(n::text) || md5(n::text), 'tenant-' || n, ARRAY['runs:write'] "
            "FROM generate_series(1, 10) AS n")
        await connection.execute(
            "INSERT INTO research_runs (id, api_key_id, question, max_sources, options, status, "
            "answer, sources, prompt_tokens, completion_tokens, cost_usd, attempts, created_at, "
            "started_at, finished_at) "
            "SELECT gen_random_uuid(), (SELECT id FROM api_keys ORDER BY name OFFSET n % 10 "
            "LIMIT 1), 'How do rolling updates keep capacity during deploy number ' || n || '?', "
            "5, '{\"tags\": [\"bench\"]}', 'succeeded', $1 || n, $2::jsonb, 1800 + n % 900, "
            "600 + n % 300, 0.0123, 1, now() - make_interval(secs => n), "
            "now() - make_interval(secs => n), now() - make_interval(secs => n) "
            "FROM generate_series(1, $3) AS n", _ANSWER, _SOURCES, RUNS)
        await connection.execute(
            "INSERT INTO run_events (run_id, type, data) "
            "SELECT r.id, e.type, jsonb_build_object('step', e.n, 'detail', 'searched the "
            "knowledge base and read three sources') "
            "FROM research_runs AS r CROSS JOIN (VALUES (1, 'started'), (2, 'searching'), "
            "(3, 'reading'), (4, 'reading'), (5, 'writing'), (6, 'completed')) AS e(n, type)")
        await connection.execute(
            "INSERT INTO documents (id, title, content, tenant) "
            "SELECT gen_random_uuid(), 'Runbook ' || n, repeat('Drain the node, then ' || n "
            "|| ' pods move. ', 60), CASE WHEN n % 3 = 0 THEN NULL ELSE 'tenant-' || n % 10 "
            "END FROM generate_series(1, 2000) AS n")
        await connection.execute("ANALYZE")
        return {"runs": await connection.fetchval("SELECT count(*) FROM research_runs"),
                "events": await connection.fetchval("SELECT count(*) FROM run_events"),
                "documents": await connection.fetchval("SELECT count(*) FROM documents"),
                "database_bytes": await connection.fetchval(
                    "SELECT pg_database_size(current_database())")}
    finally:
        await connection.close()


def with_database(url: str, database: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{database}"))


def main() -> None:
    with postgres_process() as server:
        migrate(server.url, timeout_seconds=30)
        sizes = asyncio.run(fill(server.url))
        backups = Path(server.pgdata).parent / "backups"
        backups.mkdir()
        host = urllib.parse.parse_qs(urllib.parse.urlsplit(server.url).query)["host"][0]
        env = {"PATH": f"{PG_BIN}:{os.environ['PATH']}", "PGHOST": host, "PGUSER": "postgres",
               "PGDATABASE": "agent", "PGPASSWORD": "", "BACKUP_DIR": str(backups),
               "KEEP": "1"}
        started = time.perf_counter()
        subprocess.run(["sh", "-c", BACKUP_SCRIPT], env=env, check=True, capture_output=True,
                       timeout=1800)
        backup_seconds = time.perf_counter() - started
        (dump,) = backups.glob("agent-*.dump")
        dump_bytes = dump.stat().st_size
        restores: dict[str, Any] = {}
        for jobs in (1, 2):
            database = f"restored_{jobs}"
            subprocess.run([str(PG_BIN / "createdb"), "-h", host, "-U", "postgres", database],
                           check=True, timeout=60)
            restored = subprocess.run(
                [sys.executable, "-m", "agent_service", "restore", "dump", str(dump),
                 "--database-url", with_database(server.url, database), f"--jobs={jobs}",
                 "--pg-restore", str(PG_BIN / "pg_restore")],
                capture_output=True, text=True, timeout=1800, cwd=APP_DIR,
                env={**os.environ, "PYTHONPATH": str(APP_DIR)})
            if restored.returncode not in (0, 1):
                raise SystemExit(f"restore with {jobs} job(s) failed: {restored.stderr}")
            report = json.loads(restored.stdout)
            if not report["ok"] or report["rows"]["research_runs"] != sizes["runs"]:
                raise SystemExit(f"restore with {jobs} job(s) is not whole: {report}")
            restores[f"jobs_{jobs}"] = {
                key: report[key] for key in ("restore_seconds", "verify_seconds",
                                             "total_seconds")}
    print(json.dumps({  # noqa: T201 - the benchmark's output
        **sizes, "dump_bytes": dump_bytes, "backup_seconds": round(backup_seconds, 3),
        "restore": restores, "rto_seconds": RTO_SECONDS,
        "note": "restore_seconds + verify_seconds is the database's share of the RTO; add the "
                "time to provision a database (minutes on RDS) and to roll the service"},
        indent=2))


if __name__ == "__main__":
    main()
