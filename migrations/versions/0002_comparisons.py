"""Comparisons: likelihood-ratio tables over stored models, with their ML refits.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 13:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # timestamps as in 0001: the column type service.db.models.UTCDateTime stores UTC in
    op.create_table(
        "comparisons",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("model_ids", sa.JSON(), nullable=False),
        sa.Column("refits", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("result", sa.JSON(none_as_null=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_comparisons_status", "comparisons", ["status"])


def downgrade() -> None:
    op.drop_index("ix_comparisons_status", table_name="comparisons")
    op.drop_table("comparisons")
