"""Intervals: confidence intervals of stored models (R's confint), tenant-scoped.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # timestamps as in 0001: service.db.models.UTCDateTime stores UTC in a timezone column
    op.create_table(
        "intervals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=True),
        sa.Column("model_id", sa.String(length=36), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("level", sa.Float(), nullable=False),
        sa.Column("nsim", sa.Integer(), nullable=True),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("result", sa.JSON(none_as_null=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_intervals_tenant", "intervals", ["tenant"])
    op.create_index("ix_intervals_model_id", "intervals", ["model_id"])
    op.create_index("ix_intervals_status", "intervals", ["status"])


def downgrade() -> None:
    op.drop_index("ix_intervals_status", table_name="intervals")
    op.drop_index("ix_intervals_model_id", table_name="intervals")
    op.drop_index("ix_intervals_tenant", table_name="intervals")
    op.drop_table("intervals")
