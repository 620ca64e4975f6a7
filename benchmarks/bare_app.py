"""The baselines for `make bench-app`, served by the same uvicorn settings as the service.

- `/api/v1/research`: a bare FastAPI JSON endpoint with no work behind it (the issue's
  reference: the service's throughput ratio is against these).
- `/shaped/api/v1/research`: the same routes with the service's contract and still no work:
  a validated JSON body, an auth dependency reading the Authorization header, a UUID path
  parameter and a response model. The gap between the two is what FastAPI itself charges for
  the contract; the rest of the service's gap is its own work (auth, rate limit, Postgres,
  the queue, request ids, metrics).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

app = FastAPI()


@app.post("/api/v1/research", status_code=202)
async def submit() -> dict[str, str]:
    return {"id": str(uuid.uuid4()), "status": "queued"}


@app.get("/api/v1/research/{run_id}")
async def read(run_id: str) -> dict[str, str]:
    return {"id": run_id, "status": "succeeded"}


class Options(BaseModel):
    tags: list[str] = Field(default_factory=list, max_length=10)


class Create(BaseModel):
    question: str = Field(min_length=3, max_length=4000)
    max_sources: int = Field(default=5, ge=1, le=20)
    options: Options = Field(default_factory=Options)


class Links(BaseModel):
    self: str
    events: str


class Accepted(BaseModel):
    id: uuid.UUID
    status: str
    links: Links


class Run(BaseModel):
    id: uuid.UUID
    status: str
    question: str
    max_sources: int


async def caller(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "missing API key")
    return token


Caller = Annotated[str, Depends(caller)]


@app.post("/shaped/api/v1/research", status_code=202, response_model=Accepted)
async def shaped_submit(body: Create, key: Caller) -> Accepted:
    run_id = uuid.uuid4()
    base = f"/api/v1/research/{run_id}"
    return Accepted(id=run_id, status="queued", links=Links(self=base, events=f"{base}/events"))


@app.get("/shaped/api/v1/research/{run_id}", response_model=Run)
async def shaped_read(run_id: uuid.UUID, key: Caller) -> Run:
    return Run(id=run_id, status="succeeded", question="How?", max_sources=3)
