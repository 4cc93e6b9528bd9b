"""A succeeded fit's end (``service.jobs.fit_end``): on PostgreSQL one statement, elsewhere
two steps, with the same promises and the same rows: nothing written unless the worker still
holds the job, a result never replaced, every number stored as the two-step path stores it."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import JobRow, ModelRow
from service.jobs import repository as jobs
from service.jobs.fit_end import end_succeeded_fit
from service.models.repository import store_fit_result
from service.stats.fit import FittedModel, fit_model
from tests.db.factories import DATA, submit_fit

FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleepstudy() -> pd.DataFrame:
    frame = pd.read_csv(DATA / "sleepstudy.csv")
    frame["Subject"] = frame["Subject"].astype(str)
    return frame


@pytest.fixture(scope="module")
def fitted(sleepstudy: pd.DataFrame) -> FittedModel:
    # an R-style NA among the metrics (r_squared is None for a mixed model) and NaN-free
    # floats with full precision: both must come back as they went in
    return fit_model(FORMULA, sleepstudy)


def _claimed(session_factory: sessionmaker[Session], frame: pd.DataFrame,
             worker: str = "w") -> tuple[str, str]:
    model_id, job_id = submit_fit(session_factory, frame, FORMULA)
    with session_factory.begin() as session:
        job = jobs.claim_next(session, worker, 30.0, max_recoveries=3)
        assert job is not None and job.id == job_id
    return model_id, job_id


def _stored(session_factory: sessionmaker[Session], model_id: str) -> dict[str, Any]:
    with session_factory() as session:
        model = session.get(ModelRow, model_id)
        assert model is not None
        tables = {table: [tuple(row)[1:] for row in session.execute(text(
            f"SELECT * FROM {table} WHERE model_id = :id ORDER BY 2"), {"id": model_id})]
                  for table in ("fixed_effects", "variance_components", "model_metrics")}
        return {"status": model.status, "result": model.result,
                "state": model.prediction_state, "modes": model.conditional_modes, **tables}


def _job_status(session_factory: sessionmaker[Session], job_id: str) -> tuple[str, str | None]:
    with session_factory() as session:
        job = session.get(JobRow, job_id)
        assert job is not None
        return job.status, job.lease_owner


def test_the_end_stores_what_the_two_steps_store(
        session_factory: sessionmaker[Session], sleepstudy: pd.DataFrame,
        fitted: FittedModel) -> None:
    one, one_job = _claimed(session_factory, sleepstudy)
    with session_factory.begin() as session:
        assert end_succeeded_fit(session, one_job, "w", one, fitted) == (True, True)
    two, two_job = _claimed(session_factory, sleepstudy)
    with session_factory.begin() as session:
        assert jobs.complete_if_held(session, two_job, "w")
        assert store_fit_result(session, two, fitted)
    got, want = _stored(session_factory, one), _stored(session_factory, two)
    assert got == want  # exactly: the same floats, the same NULLs, the same documents
    assert got["status"] == "succeeded" and len(got["model_metrics"]) > 10
    assert any(value is None for _, value in got["model_metrics"])
    assert _job_status(session_factory, one_job) == ("succeeded", None)


def test_a_worker_that_no_longer_holds_the_job_writes_nothing(
        session_factory: sessionmaker[Session], sleepstudy: pd.DataFrame,
        fitted: FittedModel) -> None:
    model_id, job_id = _claimed(session_factory, sleepstudy, worker="owner")
    with session_factory.begin() as session:
        assert end_succeeded_fit(session, job_id, "someone-else", model_id, fitted) == (
            False, False)
    stored = _stored(session_factory, model_id)
    assert stored["status"] == "queued" and stored["result"] is None  # as the claim left it
    assert stored["fixed_effects"] == [] and stored["model_metrics"] == []
    assert _job_status(session_factory, job_id) == ("running", "owner")


def test_a_model_with_a_result_keeps_it_and_its_job_ends(
        session_factory: sessionmaker[Session], sleepstudy: pd.DataFrame,
        fitted: FittedModel) -> None:
    model_id, job_id = _claimed(session_factory, sleepstudy)
    with session_factory.begin() as session:
        assert store_fit_result(session, model_id, fitted)  # another attempt's result
    before = _stored(session_factory, model_id)
    other = fit_model("Reaction ~ Days + (1 | Subject)",
                      pd.read_csv(DATA / "sleepstudy.csv").astype({"Subject": str}))
    with session_factory.begin() as session:
        assert end_succeeded_fit(session, job_id, "w", model_id, other) == (True, False)
    assert _stored(session_factory, model_id) == before
    assert _job_status(session_factory, job_id) == ("succeeded", None)
