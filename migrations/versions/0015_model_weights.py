"""Models gain ``weights``: the column of prior weights, as the ``weights`` argument of R's
``lm`` and ``lmer`` (null: unit weights, as every model stored before was fitted).

A column beside ``contrasts`` (0014) for the same reason: the fit's job reads it before
there is a result, and every design rebuilt from the stored model needs it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("weights", sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("weights")
