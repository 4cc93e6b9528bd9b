"""A dataset deleted between a claim's joined read of the model and the read of the
dataset's bytes (PostgreSQL, READ COMMITTED: each statement sees the newest commit) fails
the fit as a deleted dataset does. It raised ObjectDeletedError, which rolled the claim back
and logged an unexpected error before the next claim found the dataset gone."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.datasets.repository import delete_dataset
from service.db.models import JobRow, ModelRow
from service.jobs import repository as jobs
from service.jobs.tasks import claimed_fit_of
from service.models.repository import get_model_and_dataset
from tests.db.factories import DATA, submit_fit


def test_a_dataset_deleted_after_the_joined_read_fails_the_fit(
        database_url: str, session_factory: sessionmaker[Session]) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite: the claim holds the write lock, so no delete can come between")
    model_id, job_id = submit_fit(session_factory, pd.read_csv(DATA / "sleepstudy.csv"),
                                  "Reaction ~ Days + (Days | Subject)")
    with session_factory.begin() as session:
        job = jobs.claim_next(session, "worker-a", 30.0, max_recoveries=3)
        assert job is not None and job.id == job_id
        read = get_model_and_dataset(session, model_id)
        assert read is not None and read[1] is not None
        with session_factory.begin() as other:
            assert delete_dataset(other, read[1].id)
        assert claimed_fit_of(session, job, *read) is None
    with session_factory() as session:
        model = session.get(ModelRow, model_id)
        stored_job = session.get(JobRow, job_id)
        assert model is not None and stored_job is not None
        assert model.status == "failed"
        assert model.error is not None and "deleted" in model.error["detail"]
        assert stored_job.status == "failed"
        assert stored_job.last_error == "the dataset was deleted"
