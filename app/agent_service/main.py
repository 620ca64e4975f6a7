"""Builds the FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from agent_service.api.routes import health


def create_app() -> FastAPI:
    app = FastAPI(title="agent-service", version="0.1.0")
    app.include_router(health.router)
    return app


app = create_app()
