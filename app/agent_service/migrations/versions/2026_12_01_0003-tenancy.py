"""Documents belong to a tenant; API keys carry a tenant and scopes.

Until now every key saw and could delete every document. Existing keys and documents move to
the `default` tenant, so a single-tenant installation behaves as before; existing keys keep the
scopes they effectively had (runs:write, documents:write) but not admin. A document with no
tenant is shared: every tenant searches it, only admin keys manage it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("tenant", sa.String(100), nullable=False,
                                        server_default="default"))
    op.add_column("api_keys", sa.Column("scopes", postgresql.ARRAY(sa.String(32)),
                                        nullable=False,
                                        server_default=sa.text("'{runs:write,documents:write}'")))
    op.add_column("documents", sa.Column("tenant", sa.String(100)))
    op.execute("UPDATE documents SET tenant = 'default'")
    op.create_index("ix_documents_tenant_created", "documents", ["tenant", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_documents_tenant_created", table_name="documents")
    op.drop_column("documents", "tenant")
    op.drop_column("api_keys", "scopes")
    op.drop_column("api_keys", "tenant")
