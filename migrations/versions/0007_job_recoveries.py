"""Recoveries of a job (jobs.recoveries): takeovers after its worker stopped mid-run.

A job whose worker died (its lease expired while running) is taken over by another worker
without spending an attempt; recoveries counts those takeovers so that they can be capped
(MIXEDFIT_MAX_RECOVERIES). Jobs queued before this revision start at 0.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("recoveries", sa.Integer(), nullable=False,
                                   server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("recoveries")
