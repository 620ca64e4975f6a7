"""`agent-service`: one entry point for every role the image plays, and for API keys.

Key commands print one JSON document on stdout and nothing else there; log lines (the audit
trail included) go to stderr. Exit codes: 0 done, 1 the command could not do what was asked (the
JSON says why), 2 a usage error, 3 invalid settings (one line per bad variable on stderr).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import structlog
import typer
import uvicorn
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from agent_service.auth.keys import check_scopes, create_key, list_keys, revoke_key
from agent_service.core.config import Settings, get_settings, settings_problems
from agent_service.core.logging import configure_logging
from agent_service.db.models import DEFAULT_SCOPES, DEFAULT_TENANT, SCOPES
from agent_service.db.session import make_engine, make_sessionmaker

SETTINGS_ERROR = 3
# An idle keep-alive connection is closed by the client or proxy first, never by the server: the
# ALB keeps idle connections to its targets 300 s (components/kubernetes/alb.py), and a server
# closing one as the proxy reuses it answers that request with a reset (a 502 at the ALB).
KEEP_ALIVE_SECONDS = 310
T = TypeVar("T")

app = typer.Typer(help="The research agent service.", no_args_is_help=True)
keys = typer.Typer(help="Create, list and revoke API keys (JSON on stdout).",
                   no_args_is_help=True)
app.add_typer(keys, name="keys")
restore = typer.Typer(help="Restore a backup into a new database and verify it (JSON on "
                           "stdout, with each step's duration).", no_args_is_help=True)
app.add_typer(restore, name="restore")
audit = structlog.get_logger("agent_service.audit")
SCOPE_HELP = (f"Repeat for several: {', '.join(SCOPES)} (admin: every scope, and the shared "
              f"documents). Default: {' '.join(DEFAULT_SCOPES)}.")


def _settings(*, stderr: bool = False) -> Settings:
    settings = get_settings()
    configure_logging(settings.log_level, stream=sys.stderr if stderr else sys.stdout,
                      console=settings.log_format == "console")
    return settings


@app.command()
def api(host: str = "0.0.0.0", port: int = 8000, workers: int = 1) -> None:
    """Serve the HTTP API (several processes with --workers; set PROMETHEUS_MULTIPROC_DIR)."""
    # Checked here, so a bad setting is one line and exit 3 rather than a traceback from inside
    # uvicorn's app factory.
    _settings()
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        # Files left by an earlier run would be added to this run's counters.
        shutil.rmtree(metrics_dir, ignore_errors=True)
        os.makedirs(metrics_dir, exist_ok=True)
    # log_config=None: uvicorn's own loggers go through ours, as JSON like every other line.
    uvicorn.run("agent_service.main:create_app", factory=True, host=host, port=port,
                workers=workers, proxy_headers=True, server_header=False, access_log=False,
                timeout_keep_alive=KEEP_ALIVE_SECONDS, timeout_graceful_shutdown=25,
                log_config=None)


@app.command()
def worker() -> None:
    """Process research jobs until SIGTERM, then drain."""
    from agent_service.jobs.worker import run_worker

    run_worker(_settings())


@app.command()
def migrate(timeout: float = 120.0) -> None:
    """Wait for Postgres, then upgrade the schema to the latest migration."""
    from agent_service.db.migrate import migrate as run_migrations

    run_migrations(_settings().database_url.get_secret_value(), timeout)


def _in_session(settings: Settings, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = make_engine(settings.database_url.get_secret_value(), pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session:
                return await action(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _print(document: Any) -> None:
    typer.echo(json.dumps(document))


@keys.command("create")
def create(
    name: str = typer.Option(..., help="Who or what the key is for."),
    tenant: str = typer.Option(DEFAULT_TENANT,
                               help="Whose documents the key sees and manages."),
    scope: Annotated[list[str] | None, typer.Option(help=SCOPE_HELP)] = None,
) -> None:
    """Create a key and print it once; only its hash is stored."""
    try:
        scopes = check_scopes(scope or DEFAULT_SCOPES)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--scope") from error
    if not tenant.strip() or len(tenant) > 100:
        raise typer.BadParameter(f"{tenant!r}: 1 to 100 characters", param_hint="--tenant")
    key, row = _in_session(_settings(stderr=True),
                           lambda s: create_key(s, name, tenant, scopes))
    audit.info("api key created", prefix=row.prefix, name=name, tenant=tenant, scopes=scopes)
    _print({"key": key, "prefix": row.prefix, "name": row.name, "id": str(row.id),
            "tenant": row.tenant, "scopes": row.scopes})


@keys.command("list")
def list_() -> None:
    """Print every key (prefix, name, tenant, scopes, created, revoked), newest first; never
    a secret."""
    rows = _in_session(_settings(stderr=True), list_keys)
    _print([{"prefix": row.prefix, "name": row.name, "id": str(row.id), "tenant": row.tenant,
             "scopes": row.scopes, "created_at": row.created_at.isoformat(),
             "revoked": row.revoked_at is not None,
             "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None}
            for row in rows])


@keys.command("revoke")
def revoke(key: str = typer.Argument(..., help="The key, `ak_<prefix>` or the 8-hex prefix.")
           ) -> None:
    """Revoke a key, given whole or by its prefix; exit 1 with the reason if nothing was."""
    outcome = _in_session(_settings(stderr=True), lambda s: revoke_key(s, key))
    if outcome.revoked:
        audit.info("api key revoked", prefix=outcome.prefix)
        _print({"prefix": outcome.prefix, "revoked": True})
        return
    _print({"prefix": outcome.prefix, "revoked": False, "reason": outcome.reason})
    raise typer.Exit(code=1)


def _report(document: dict[str, Any]) -> None:
    _print(document)
    if not document.get("ok", True):
        raise typer.Exit(code=1)


TARGET_HELP = ("libpq URL of the new, empty database to restore into (never the live one: a "
               "database holding tables is refused).")


@restore.command("dump")
def restore_dump_(
    dump: Annotated[Path, typer.Argument(help="A pg_dump --format=custom file.")],
    database_url: Annotated[str, typer.Option(envvar="RESTORE_DATABASE_URL", help=TARGET_HELP)],
    jobs: Annotated[int, typer.Option(min=1, max=16, help="pg_restore's parallel jobs.")] = 2,
    pg_restore: Annotated[str, typer.Option(help="The pg_restore binary (of the server's "
                                                 "major or newer).")] = "pg_restore",
) -> None:
    """Restore a dump (the local stack's backups) into an empty database, then verify it."""
    from agent_service.restore.dump import RestoreError, restore_dump

    configure_logging("WARNING", stream=sys.stderr)
    try:
        _report(asyncio.run(restore_dump(dump, database_url, jobs=jobs, pg_restore=pg_restore)))
    except RestoreError as error:
        _print({"ok": False, "problems": [str(error)]})
        raise typer.Exit(code=1) from error


@restore.command("verify")
def restore_verify(
    database_url: Annotated[str | None, typer.Option(
        envvar="RESTORE_DATABASE_URL", help="The database to check. Default: DATABASE_URL.")]
    = None,
) -> None:
    """Check a database: schema at the latest migration, rows per table, the newest run
    readable through the API's query; exit 1 when it is not whole."""
    from agent_service.restore.verify import verify

    url = database_url or _settings(stderr=True).database_url.get_secret_value()
    _report(asyncio.run(verify(url)))


@restore.command("rds")
def restore_rds(
    source: Annotated[str, typer.Option(help="The stack's instance (output database_host's "
                                             "first label).")],
    target: Annotated[str, typer.Option(help="Identifier for the new instance.")],
    time_: Annotated[datetime | None, typer.Option(
        "--time", formats=["%Y-%m-%dT%H:%M:%S%z"],
        help="UTC point to restore to, e.g. 2026-12-01T09:55:00+00:00.")] = None,
    latest: Annotated[bool, typer.Option(help="Restore to the latest restorable time.")] = False,
    region: Annotated[str | None, typer.Option(help="Default: the AWS configuration's.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the instance is available.")] = True,
) -> None:
    """Restore the RDS instance to a point in time into a new instance beside it (boto3)."""
    if (time_ is None) == (not latest):
        raise typer.BadParameter("give exactly one of --time or --latest", param_hint="--time")
    try:
        import boto3
    except ImportError as error:
        raise typer.BadParameter("needs boto3: pip install './app[aws]'") from error
    from agent_service.restore.rds import restore_to_point_in_time

    client = boto3.client("rds", region_name=region)
    try:
        _report(restore_to_point_in_time(source, target, time_, client=client, wait=wait))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--time") from error


def main() -> None:
    """The console script: settings problems end the command with one line each, no traceback."""
    try:
        app()
    except ValidationError as error:
        for line in settings_problems(error):
            print(f"agent-service: {line}", file=sys.stderr)  # noqa: T201 - the user's message
        sys.exit(SETTINGS_ERROR)


if __name__ == "__main__":
    main()
