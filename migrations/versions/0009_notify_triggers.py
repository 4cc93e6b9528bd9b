"""PostgreSQL notifications: a job queued wakes the workers, a finished fit wakes the API.

Triggers, not application code, send them, so every writer (API, worker, a retry, a
recovered job) is covered. ``mixedfit_jobs`` carries the job's kind when a job becomes
queued; ``mixedfit_finished`` carries a model's id when its status becomes succeeded or
failed. pg_notify inside a transaction is delivered at its commit. SQLite has no
notifications (embedded mode wakes in process): nothing to do there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = [
    """
    CREATE OR REPLACE FUNCTION mixedfit_notify_job_queued() RETURNS trigger AS $$
    BEGIN
        PERFORM pg_notify('mixedfit_jobs', NEW.kind);
        RETURN NULL;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER jobs_notify_queued AFTER INSERT OR UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.status = 'queued') EXECUTE FUNCTION mixedfit_notify_job_queued()
    """,
    """
    CREATE OR REPLACE FUNCTION mixedfit_notify_model_finished() RETURNS trigger AS $$
    BEGIN
        PERFORM pg_notify('mixedfit_finished', NEW.id);
        RETURN NULL;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER models_notify_finished AFTER UPDATE OF status ON models
    FOR EACH ROW WHEN (NEW.status IN ('succeeded', 'failed')
                       AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION mixedfit_notify_model_finished()
    """,
]

DOWNGRADE = [
    "DROP TRIGGER IF EXISTS models_notify_finished ON models",
    "DROP FUNCTION IF EXISTS mixedfit_notify_model_finished()",
    "DROP TRIGGER IF EXISTS jobs_notify_queued ON jobs",
    "DROP FUNCTION IF EXISTS mixedfit_notify_job_queued()",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DOWNGRADE:
            op.execute(statement)
