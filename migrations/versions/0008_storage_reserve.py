"""The storage reserve (storage_reserve): space PostgreSQL gives back when its disk fills.

``service.db.reserve`` fills it when the API starts and spends it when a VACUUM after a
delete finds no room. ``filler`` is stored PLAIN on PostgreSQL: uncompressed and in the
table's own pages (not a TOAST table), so a row is one page, and deleting and vacuuming
the rows truncates the table and returns its pages to the file system. On SQLite the
table stays empty (the reserve there is a file next to the database).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "storage_reserve",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("filler", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE storage_reserve ALTER COLUMN filler SET STORAGE PLAIN")


def downgrade() -> None:
    op.drop_table("storage_reserve")
