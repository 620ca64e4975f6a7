"""Runs are handed to the queue by the workers' relay (jobs/relay.py), not by the API.

`enqueued_at` marks a run handed to the queue; `trace_context` carries the submitting request's
trace to the job. Existing runs were enqueued by the API when they were saved.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("research_runs", sa.Column("enqueued_at", sa.DateTime(timezone=True)))
    op.add_column("research_runs", sa.Column("trace_context", postgresql.JSONB()))
    op.execute("UPDATE research_runs SET enqueued_at = created_at")
    op.create_index("ix_research_runs_unqueued", "research_runs", ["created_at"],
                    postgresql_where=sa.text("enqueued_at IS NULL AND status = 'queued'"))


def downgrade() -> None:
    op.drop_index("ix_research_runs_unqueued", table_name="research_runs")
    op.drop_column("research_runs", "trace_context")
    op.drop_column("research_runs", "enqueued_at")
