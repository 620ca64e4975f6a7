"""Postgres itself announces saved runs to the workers' relays.

The API sent `pg_notify` in the statement that saved a run; a statement-level trigger does it for
every insert (the API, the CLI, a restore), so nothing that saves runs can forget to wake the
relay. NOTIFY is delivered on commit, once per transaction and payload.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION notify_research_runs_saved() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('research_runs_saved', '');
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE TRIGGER research_runs_saved AFTER INSERT ON research_runs
        FOR EACH STATEMENT EXECUTE FUNCTION notify_research_runs_saved()""")


def downgrade() -> None:
    op.execute("DROP TRIGGER research_runs_saved ON research_runs")
    op.execute("DROP FUNCTION notify_research_runs_saved()")
