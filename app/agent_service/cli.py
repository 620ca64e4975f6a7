"""`agent-service`: one entry point for every role the image plays."""

from __future__ import annotations

import asyncio
import json
import os
import shutil

import typer
import uvicorn

from agent_service.auth.keys import create_key, revoke_key
from agent_service.core.config import get_settings
from agent_service.core.logging import configure_logging
from agent_service.db.session import make_engine, make_sessionmaker

app = typer.Typer(help="The research agent service.", no_args_is_help=True)
keys = typer.Typer(help="Create and revoke API keys.", no_args_is_help=True)
app.add_typer(keys, name="keys")


@app.command()
def api(host: str = "0.0.0.0", port: int = 8000, workers: int = 1) -> None:
    """Serve the HTTP API (several processes with --workers; set PROMETHEUS_MULTIPROC_DIR)."""
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        # Files left by an earlier run would be added to this run's counters.
        shutil.rmtree(metrics_dir, ignore_errors=True)
        os.makedirs(metrics_dir, exist_ok=True)
    uvicorn.run("agent_service.main:create_app", factory=True, host=host, port=port,
                workers=workers, proxy_headers=True, server_header=False, access_log=False,
                timeout_graceful_shutdown=25)


@app.command()
def worker() -> None:
    """Process research jobs until SIGTERM, then drain."""
    from agent_service.jobs.worker import run_worker

    settings = get_settings()
    configure_logging(settings.log_level)
    run_worker(settings)


@app.command()
def migrate(timeout: float = 120.0) -> None:
    """Wait for Postgres, then upgrade the schema to the latest migration."""
    from agent_service.db.migrate import migrate as run_migrations

    settings = get_settings()
    configure_logging(settings.log_level)
    run_migrations(settings.database_url.get_secret_value(), timeout)


async def _with_session(action: str, value: str) -> dict[str, str]:
    settings = get_settings()
    engine = make_engine(settings.database_url.get_secret_value(), pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            if action == "create":
                key, row = await create_key(session, value)
                return {"key": key, "prefix": row.prefix, "name": row.name, "id": str(row.id)}
            revoked = await revoke_key(session, value)
            return {"prefix": value, "revoked": str(revoked).lower()}
    finally:
        await engine.dispose()


@keys.command("create")
def create(name: str = typer.Option(..., help="Who or what the key is for.")) -> None:
    """Create a key and print it once (JSON); only its hash is stored."""
    import structlog

    configure_logging(get_settings().log_level)
    result = asyncio.run(_with_session("create", name))
    structlog.get_logger("agent_service.audit").info("api key created", prefix=result["prefix"],
                                                     name=name)
    typer.echo(json.dumps(result))


@keys.command("revoke")
def revoke(prefix: str) -> None:
    """Revoke the key with this prefix (the 8 hex characters after `ak_`)."""
    import structlog

    configure_logging(get_settings().log_level)
    result = asyncio.run(_with_session("revoke", prefix))
    structlog.get_logger("agent_service.audit").info("api key revoked", prefix=prefix,
                                                     revoked=result["revoked"])
    typer.echo(json.dumps(result))
    if result["revoked"] != "true":
        raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
