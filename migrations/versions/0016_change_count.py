"""SQLite: count the changes that caches must see (API keys written, models or datasets
deleted) in ``change_count``, by triggers, as 0013 notifies them on PostgreSQL; the caches'
change token (service/db/changes.py) reads the count when the file has changed, instead of
taking every commit (a fit stored, a dataset uploaded) for such a change.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 13:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (trigger, event, table): SQLite's triggers are per row
TRIGGERS = [
    ("api_keys_inserted_count", "INSERT", "api_keys"),
    ("api_keys_updated_count", "UPDATE", "api_keys"),
    ("api_keys_deleted_count", "DELETE", "api_keys"),
    ("models_deleted_count", "DELETE", "models"),
    ("datasets_deleted_count", "DELETE", "datasets"),
]


def upgrade() -> None:
    op.create_table(
        "change_count",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("changes", sa.Integer(), nullable=False),
    )
    op.execute("INSERT INTO change_count (id, changes) VALUES (1, 0)")
    if op.get_bind().dialect.name == "sqlite":
        for name, event, table in TRIGGERS:
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN "
                       "UPDATE change_count SET changes = changes + 1 WHERE id = 1; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, _, _ in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("change_count")
