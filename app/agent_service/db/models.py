"""Tables: API keys, research runs and their events, and the knowledge base documents.

The one declaration of the schema: the migrations are written from it (tests/test_schema.py
compares them) and every query in the service is built from these classes."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column

from agent_service.db.base import Base

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")
# What a key may do besides reading its own runs and its tenant's and the shared documents.
SCOPES = ("runs:write", "documents:write", "admin")
DEFAULT_SCOPES = ("runs:write", "documents:write")
DEFAULT_TENANT = "default"


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True,
                                          default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False, unique=True)
    # SHA-256 of the whole key: keys are 256-bit random, so a slow hash adds nothing.
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    # Whose documents the key sees and manages; runs are the key's own.
    tenant: Mapped[str] = mapped_column(String(100), nullable=False,
                                        server_default=DEFAULT_TENANT)
    scopes: Mapped[list[str]] = mapped_column(
        ARRAY(String(32)), nullable=False,
        server_default=text("'{" + ",".join(DEFAULT_SCOPES) + "}'"))
    created_at: Mapped[datetime] = _now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ResearchRun(Base):
    __tablename__ = "research_runs"
    __table_args__ = (
        CheckConstraint(f"status IN {RUN_STATUSES}", name="status"),
        Index("ix_research_runs_key_created", "api_key_id", "created_at"),
        Index("ix_research_runs_status_created", "status", "created_at"),
        # The relay's work list (jobs/relay.py): saved runs not yet handed to the queue.
        Index("ix_research_runs_unqueued", "created_at",
              postgresql_where=text("enqueued_at IS NULL AND status = 'queued'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True,
                                          default=uuid.uuid4)
    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"), nullable=False)
    question: Mapped[str] = mapped_column(Text, nullable=False)
    max_sources: Mapped[int] = mapped_column(Integer, nullable=False)
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    answer: Mapped[str | None] = mapped_column(Text)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False, default=list)
    prompt_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = _now()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Touched by the worker at every step; a running run whose heartbeat stops was lost with
    # its worker and is handed to another (jobs/reaper.py).
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the relay handed the run to the queue (jobs/relay.py); NULL until then.
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The submitting request's trace (W3C headers), continued by the job.
    trace_context: Mapped[dict[str, str] | None] = mapped_column(JSONB)


class RunEvent(Base):
    __tablename__ = "run_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("research_runs.id", ondelete="CASCADE"), nullable=False, index=True)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    created_at: Mapped[datetime] = _now()


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (Index("ix_documents_search", "search", postgresql_using="gin"),
                      Index("ix_documents_tenant_created", "tenant", "created_at"))

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True,
                                          default=uuid.uuid4)
    title: Mapped[str] = mapped_column(String(500), nullable=False)
    source: Mapped[str | None] = mapped_column(String(2000))
    content: Mapped[str] = mapped_column(Text, nullable=False)
    # The owning tenant; NULL for the shared documents every tenant searches (admin keys only).
    tenant: Mapped[str | None] = mapped_column(String(100))
    search: Mapped[Any] = mapped_column(
        TSVECTOR, Computed("to_tsvector('english', title || ' ' || content)", persisted=True))
    created_at: Mapped[datetime] = _now()
