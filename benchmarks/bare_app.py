"""The baseline for `make bench-app`: a bare FastAPI app with the same endpoints' shapes and
no work behind them, served by the same uvicorn settings."""

from __future__ import annotations

import uuid

from fastapi import FastAPI

app = FastAPI()


@app.post("/api/v1/research", status_code=202)
async def submit() -> dict[str, str]:
    return {"id": str(uuid.uuid4()), "status": "queued"}


@app.get("/api/v1/research/{run_id}")
async def read(run_id: str) -> dict[str, str]:
    return {"id": run_id, "status": "succeeded"}
