"""Request and response bodies of the public API."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints


def _no_nul(value: str) -> str:
    # Postgres text cannot hold NUL; refuse it here rather than fail on insert.
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"^[\w.:-]+$")]


# Request bodies: unknown fields refused, and no coercion ("3" is not a number of sources).
REQUEST = ConfigDict(extra="forbid", strict=True)


class ResearchOptions(BaseModel):
    model_config = REQUEST

    tags: list[Tag] = Field(default_factory=list, max_length=10,
                            description="Labels to find the run by later.")


class ResearchCreate(BaseModel):
    model_config = REQUEST

    question: Text = Field(min_length=3, max_length=4000,
                          description="What to research, in plain language.")
    max_sources: int = Field(default=5, ge=1, le=20,
                             description="Most knowledge-base documents to cite.")
    options: ResearchOptions = Field(default_factory=ResearchOptions)


class Links(BaseModel):
    self: str
    events: str


class RunAccepted(BaseModel):
    id: uuid.UUID
    status: RunStatus
    links: Links


class Source(BaseModel):
    number: int
    document_id: str
    title: str
    source: str | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal


class RunSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: RunStatus
    question: str
    created_at: datetime
    finished_at: datetime | None


class RunDetail(RunSummary):
    max_sources: int
    tags: list[str]
    answer: str | None
    sources: list[Source]
    usage: Usage
    error: str | None
    attempts: int
    started_at: datetime | None


class RunPage(BaseModel):
    items: list[RunSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at "
                                                "the end.")


class DocumentCreate(BaseModel):
    model_config = REQUEST

    title: Text = Field(min_length=1, max_length=500)
    content: Text = Field(min_length=1, max_length=200_000)
    source: Text | None = Field(default=None, max_length=2000,
                               description="Where the text came from (URL or reference).")
    shared: bool = Field(default=False,
                         description="Searchable by every tenant; needs an admin key.")


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    source: str | None
    created_at: datetime
    characters: int
    shared: bool = Field(description="Whether every tenant searches it (else only the "
                                     "owner's tenant).")


class DocumentPage(BaseModel):
    items: list[DocumentOut]
    next_cursor: str | None


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str | None


class ErrorBody(BaseModel):
    error: ErrorDetail
