"""Migration 0007 (jobs.recoveries) on a database holding a job from before it: the job
starts with no recoveries and is claimable as before; the migration goes down and up again.
On SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from service.db.migrate import alembic_config
from service.db.session import create_db_engine, make_session_factory
from service.jobs import repository as jobs


def test_a_job_from_before_recoveries_has_none(empty_database_url: str) -> None:
    engine = create_db_engine(empty_database_url)
    try:
        command.upgrade(alembic_config(engine), "0006")
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO jobs (id, kind, target_id, status, attempts, max_attempts, "
                "created_at) VALUES ('j', 'fit', 'm', 'queued', 0, 3, CURRENT_TIMESTAMP)"))
        command.upgrade(alembic_config(engine), "0007")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT recoveries FROM jobs")).all() == [(0,)]
        with make_session_factory(engine).begin() as session:
            job = jobs.claim_next(session, "w", 30.0, max_recoveries=10)
            assert job is not None and (job.attempts, job.recoveries) == (1, 0)
        command.downgrade(alembic_config(engine), "0006")
        assert "recoveries" not in {c["name"] for c in inspect(engine).get_columns("jobs")}
        command.upgrade(alembic_config(engine), "head")
    finally:
        engine.dispose()
