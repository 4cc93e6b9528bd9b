"""Per-group fits' pool option (models.pool) and aliased coefficients (fixed_effects.aliased).

Per-group models stored before this revision were fitted with each group's own standard
errors, so a succeeded one is marked ``pool = false``; a per-group model still waiting for
its fit gets the new default (``true``, lme4's). Other models have no pool (null).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("pool", sa.Boolean(), nullable=True))
    with op.batch_alter_table("fixed_effects") as batch:
        batch.add_column(sa.Column("aliased", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    models = sa.table("models", sa.column("kind", sa.String), sa.column("status", sa.String),
                      sa.column("pool", sa.Boolean))
    op.execute(models.update()
               .where(models.c.kind == "lm_by_group", models.c.status == "succeeded")
               .values(pool=False))
    op.execute(models.update()
               .where(models.c.kind == "lm_by_group", models.c.status != "succeeded")
               .values(pool=True))


def downgrade() -> None:
    with op.batch_alter_table("fixed_effects") as batch:
        batch.drop_column("aliased")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("pool")
