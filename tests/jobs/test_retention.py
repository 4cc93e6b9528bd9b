"""Retention of failed and cancelled models (MIXEDFIT_FAILED_MODEL_RETENTION_DAYS) by a real
worker loop on SQLite and PostgreSQL: expired ones go with their jobs; recent ones, ones an
alias points at and succeeded ones stay; off by default; a minute between sweeps."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import JobRow, ModelRow, utcnow
from service.db.registry import ModelAliasRow, RegisteredModelRow
from service.jobs.worker import Worker
from service.settings import Settings


def _model(session: Session, status: str, days_ago: float) -> str:
    ended = utcnow() - timedelta(days=days_ago)
    row = ModelRow(id=str(uuid.uuid4()), dataset_id="d", formula="y ~ x", method="REML",
                   kind="lm", status=status, created_at=ended, finished_at=ended)
    session.add(row)
    session.add(JobRow(id=str(uuid.uuid4()), kind="fit", target_id=row.id,
                       status="failed" if status != "succeeded" else "succeeded",
                       attempts=1, max_attempts=3, created_at=ended))
    return row.id


def test_the_worker_deletes_expired_failed_and_cancelled_models(
        database_url: str, session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        old_failed = _model(session, "failed", 10)
        old_cancelled = _model(session, "cancelled", 10)
        recent = _model(session, "failed", 1)
        succeeded = _model(session, "succeeded", 30)
        aliased = _model(session, "failed", 30)
        session.add(RegisteredModelRow(id="r", name="kept", latest_version=1,
                                       created_at=utcnow()))
        session.flush()
        session.add(ModelAliasRow(registered_model_id="r", alias="broken", model_id=aliased,
                                  version=1, revision=1, updated_at=utcnow()))
    Worker(Settings(database_url=database_url), session_factory).run_once()  # off: nothing
    with session_factory() as session:
        assert len(session.scalars(select(ModelRow.id)).all()) == 5
    worker = Worker(Settings(database_url=database_url, failed_model_retention_days=7),
                    session_factory)
    assert worker.run_once() is False  # nothing to claim; the sweep ran before
    with session_factory() as session:
        left = set(session.scalars(select(ModelRow.id)))
        jobs_left = set(session.scalars(select(JobRow.target_id)))
    assert left == {recent, succeeded, aliased}
    assert jobs_left == left and not {old_failed, old_cancelled} & jobs_left
    # the next sweep on this database is a minute away
    with session_factory.begin() as session:
        later = _model(session, "failed", 10)
    worker.run_once()
    with session_factory() as session:
        assert session.get(ModelRow, later) is not None
