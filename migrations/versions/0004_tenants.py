"""API keys and tenants: the api_keys table, and the tenant owning each client resource.

``tenant`` is added (nullable) to datasets, models, comparisons and jobs. Rows stored
before this revision were created in open mode, without a key: their tenant stays NULL,
which admin keys see (and open mode, while no key exists). Only the SHA-256 of a key is
stored. ``ix_jobs_tenant_started_at`` lets the workers' fair claim read each tenant's
newest claim cheaply.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 11:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANTED = ("datasets", "models", "comparisons", "jobs")


def upgrade() -> None:
    # timestamps as in 0001: the column type service.db.models.UTCDateTime stores UTC in
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_sha256", name="uq_api_keys_key_sha256"),
    )
    for table in TENANTED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("tenant", sa.String(length=200), nullable=True))
        op.create_index(f"ix_{table}_tenant", table, ["tenant"])
    op.create_index("ix_jobs_tenant_started_at", "jobs", ["tenant", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_tenant_started_at", table_name="jobs")
    for table in reversed(TENANTED):
        op.drop_index(f"ix_{table}_tenant", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("tenant")
    op.drop_table("api_keys")
