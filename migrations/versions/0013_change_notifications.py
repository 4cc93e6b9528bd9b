"""PostgreSQL: notify ``mixedfit_changes`` when API keys are written or models or datasets
deleted, so each API process's caches of key lookups and of models know to check again
(service/db/changes.py).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 16:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = [
    """
    CREATE OR REPLACE FUNCTION mixedfit_notify_changed() RETURNS trigger AS $$
    BEGIN
        PERFORM pg_notify('mixedfit_changes', TG_TABLE_NAME);
        RETURN NULL;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER api_keys_notify_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION mixedfit_notify_changed()
    """,
    """
    CREATE TRIGGER models_notify_deleted AFTER DELETE ON models
    FOR EACH STATEMENT EXECUTE FUNCTION mixedfit_notify_changed()
    """,
    """
    CREATE TRIGGER datasets_notify_deleted AFTER DELETE ON datasets
    FOR EACH STATEMENT EXECUTE FUNCTION mixedfit_notify_changed()
    """,
]

DOWNGRADE = [
    "DROP TRIGGER IF EXISTS datasets_notify_deleted ON datasets",
    "DROP TRIGGER IF EXISTS models_notify_deleted ON models",
    "DROP TRIGGER IF EXISTS api_keys_notify_changed ON api_keys",
    "DROP FUNCTION IF EXISTS mixedfit_notify_changed()",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DOWNGRADE:
            op.execute(statement)
