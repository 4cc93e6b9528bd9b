"""Models gain ``contrasts``: the coding of factor columns of the fixed part, as the
``contrasts`` argument of R's ``lm`` and ``lmer`` (``{"recipe": "contr.sum"}``; null for
treatment coding of every factor, which is how every model stored before was fitted).

A column of its own rather than a key in ``result`` or ``prediction_state``: the fit's
job reads it before there is a result, and every design rebuilt from the stored model
(anova tables, residuals, profiles) needs it next to the formula.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("contrasts", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("contrasts")
