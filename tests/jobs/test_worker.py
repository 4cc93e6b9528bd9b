"""The worker loop in this process, fitting in real child processes (SQLite, PostgreSQL)."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.datasets.repository import delete_dataset
from service.db.models import FixedEffectRow, ModelRow
from service.jobs import repository as jobs
from service.jobs import start_embedded_worker
from service.jobs import worker as worker_module
from service.jobs.child import FitRequest
from service.jobs.runner import WorkOutcome, run_work
from service.jobs.tasks import TaskContext, record_outcome
from service.jobs.worker import Worker
from service.settings import Settings
from tests.db.factories import DATA, expected, parquet_bytes, submit_fit
from tests.jobs.helpers import SLOW_FORMULA, endless_lmm_data, stored, wait_for

SessionFactory = sessionmaker[Session]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, lease_seconds=30.0, fit_timeout_seconds=600.0)


@pytest.fixture
def mood() -> pd.DataFrame:
    return pd.read_csv(DATA / "mood.csv")


def test_a_queued_fit_is_run_and_stored(settings: Settings, session_factory: SessionFactory,
                                        mood: pd.DataFrame) -> None:
    model_id, job_id = submit_fit(session_factory, mood, "Mood ~ Exercise")
    worker = Worker(settings, session_factory)
    assert worker.run_once()
    assert not worker.run_once()
    state = stored(session_factory, model_id, job_id)
    assert (state.model_status, state.job_status, state.attempts) == ("succeeded", "succeeded", 1)
    r = expected("mood_lm")
    with session_factory() as session:
        rows = session.execute(select(FixedEffectRow.term, FixedEffectRow.estimate).where(
            FixedEffectRow.model_id == model_id).order_by(FixedEffectRow.position)).all()
        model = session.get(ModelRow, model_id)
        assert model is not None and model.result is not None
        assert model.started_at is not None and model.finished_at is not None
    assert [term for term, _ in rows] == list(r["fixef"])
    for term, estimate in rows:
        assert estimate is not None
        # R's lm to 1e-6 relative, the tolerance for the stored numbers
        assert math.isclose(estimate, r["fixef"][term], rel_tol=1e-6)
    assert math.isclose(model.result["metrics"]["loglik"], r["loglik"], rel_tol=1e-6)


def test_a_formula_the_data_cannot_fit_fails_with_a_problem(
        settings: Settings, session_factory: SessionFactory, mood: pd.DataFrame) -> None:
    model_id, job_id = submit_fit(session_factory, mood, "Mood ~ Nonexistent")
    assert Worker(settings, session_factory).run_once()
    state = stored(session_factory, model_id, job_id)
    # input errors are not retried: another attempt would fail the same way
    assert (state.model_status, state.job_status, state.attempts) == ("failed", "failed", 1)
    assert state.error is not None
    assert state.error["type"] == "urn:mixedfit:problem:fit-failed"
    assert state.error["status"] == 422
    assert "Nonexistent" in state.error["detail"]


def test_a_deleted_dataset_fails_the_model_clearly(
        settings: Settings, session_factory: SessionFactory, mood: pd.DataFrame) -> None:
    model_id, job_id = submit_fit(session_factory, mood, "Mood ~ Exercise")
    with session_factory.begin() as session:
        model = session.get(ModelRow, model_id)
        assert model is not None
        delete_dataset(session, model.dataset_id)
    assert Worker(settings, session_factory).run_once()
    state = stored(session_factory, model_id, job_id)
    assert (state.model_status, state.job_status) == ("failed", "failed")
    assert state.error is not None
    assert state.error["type"] == "urn:mixedfit:problem:dataset-not-found"


def test_a_job_run_twice_stores_one_result(settings: Settings, session_factory: SessionFactory,
                                           mood: pd.DataFrame) -> None:
    model_id, job_id = submit_fit(session_factory, mood, "Mood ~ Exercise")
    # worker "slow" claims the job and fits it, but its lease runs out before it stores
    with session_factory.begin() as session:
        slow_job = jobs.claim_next(session, "slow", lease_seconds=-1.0, max_recoveries=10)
    assert slow_job is not None
    outcome = run_work(FitRequest("Mood ~ Exercise", "REML", parquet_bytes(mood)),
                      timeout_seconds=600, memory_bytes=settings.fit_memory_bytes,
                      tick_seconds=10, on_tick=lambda: True)
    assert outcome.status == "succeeded"
    # meanwhile another worker claims the expired job and completes it
    assert Worker(settings, session_factory, worker_id="fast").run_once()
    first = stored(session_factory, model_id, job_id)
    # taken over from a worker that stopped: the same attempt
    assert (first.model_status, first.attempts) == ("succeeded", 1)
    # the slow worker's late result is discarded, not stored a second time
    record_outcome(slow_job, outcome, TaskContext(settings, session_factory, "slow",
                                                  stop=threading.Event()))
    assert stored(session_factory, model_id, job_id) == first
    assert first.n_fixed_effects == 2


def test_an_expired_lease_nobody_took_still_stores_its_result(
        settings: Settings, session_factory: SessionFactory, mood: pd.DataFrame) -> None:
    model_id, job_id = submit_fit(session_factory, mood, "Mood ~ Exercise")
    with session_factory.begin() as session:
        job = jobs.claim_next(session, "late", lease_seconds=-1.0, max_recoveries=10)
    assert job is not None
    outcome = run_work(FitRequest("Mood ~ Exercise", "REML", parquet_bytes(mood)),
                      timeout_seconds=600, memory_bytes=settings.fit_memory_bytes,
                      tick_seconds=10, on_tick=lambda: True)
    record_outcome(job, outcome, TaskContext(settings, session_factory, "late",
                                             threading.Event()))
    state = stored(session_factory, model_id, job_id)
    assert (state.model_status, state.job_status, state.n_fixed_effects) == (
        "succeeded", "succeeded", 2)


def test_a_fit_over_its_memory_limit_fails_and_the_worker_goes_on(
        settings: Settings, session_factory: SessionFactory, mood: pd.DataFrame) -> None:
    # a factor with 15,000 levels in 30,000 rows: a dense design of about 3.6 GB, far over
    # the 1.5 GB limit (a fit process starts at about 0.6 GB of address space)
    rng = np.random.default_rng(1)
    wide = pd.DataFrame({"y": rng.normal(size=30_000),
                         "f": [f"l{i}" for i in rng.integers(0, 15_000, 30_000)]})
    # three attempts allowed, one used: running out of memory is not retried
    big_id, big_job = submit_fit(session_factory, wide, "y ~ f", max_attempts=3)
    next_id, next_job = submit_fit(session_factory, mood, "Mood ~ Exercise")
    worker = Worker(settings.model_copy(update={"fit_memory_bytes": 1_500_000_000}),
                    session_factory)
    assert worker.run_once() and worker.run_once()
    big = stored(session_factory, big_id, big_job)
    assert (big.model_status, big.job_status, big.attempts) == ("failed", "failed", 1)
    assert big.error is not None
    assert big.error["type"] == "urn:mixedfit:problem:fit-memory-limit"
    assert "MIXEDFIT_FIT_MEMORY_BYTES" in big.error["detail"]
    assert "not retried" in big.error["detail"]
    assert stored(session_factory, next_id, next_job).model_status == "succeeded"


def test_a_fit_over_its_time_limit_fails_at_its_first_attempt(
        settings: Settings, session_factory: SessionFactory) -> None:
    model_id, job_id = submit_fit(session_factory, endless_lmm_data(), SLOW_FORMULA,
                                  max_attempts=3)
    worker = Worker(settings.model_copy(update={"fit_timeout_seconds": 1.0}), session_factory)
    assert worker.run_once()
    assert not worker.run_once()  # nothing requeued
    state = stored(session_factory, model_id, job_id)
    assert (state.model_status, state.job_status, state.attempts) == ("failed", "failed", 1)
    assert state.error is not None
    assert state.error["type"] == "urn:mixedfit:problem:fit-timeout"
    assert "not retried" in state.error["detail"]
    assert "MIXEDFIT_FIT_TIMEOUT_SECONDS" in state.error["detail"]


def test_a_crashed_fit_process_is_retried(settings: Settings, session_factory: SessionFactory,
                                          mood: pd.DataFrame) -> None:
    model_id, job_id = submit_fit(session_factory, mood, "Mood ~ Exercise", max_attempts=3)
    with session_factory.begin() as session:
        job = jobs.claim_next(session, "w", lease_seconds=30.0, max_recoveries=10)
    assert job is not None
    crashed = WorkOutcome("crashed", message="the fit process was killed by signal SIGSEGV")
    record_outcome(job, crashed, TaskContext(settings, session_factory, "w", threading.Event()))
    state = stored(session_factory, model_id, job_id)
    assert (state.model_status, state.job_status, state.attempts) == ("queued", "queued", 1)
    # the retry fits it
    assert Worker(settings, session_factory).run_once()
    state = stored(session_factory, model_id, job_id)
    assert (state.model_status, state.job_status, state.attempts) == (
        "succeeded", "succeeded", 2)


def test_a_busy_worker_still_fails_abandoned_jobs_within_the_check_interval(
        settings: Settings, session_factory: SessionFactory, mood: pd.DataFrame,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the check is not made on every claim (service.jobs.worker.ABANDONED_CHECK_SECONDS)
    monkeypatch.setattr(worker_module, "ABANDONED_CHECK_SECONDS", 0.3)
    worker = Worker(settings.model_copy(update={"max_recoveries": 2}), session_factory)
    assert not worker.run_once()  # the first claim checks: nothing abandoned yet
    model_id, job_id = submit_fit(session_factory, mood, "Mood ~ Exercise", max_attempts=3)
    for dead in ("dead0", "dead1", "dead2"):
        with session_factory.begin() as session:
            assert jobs.claim_next(session, dead, lease_seconds=-1.0, max_recoveries=2)
    assert not worker.run_once()  # within the interval: not looked for again
    assert stored(session_factory, model_id, job_id).job_status == "running"
    time.sleep(0.35)
    assert not worker.run_once()
    state = stored(session_factory, model_id, job_id)
    assert (state.model_status, state.job_status) == ("failed", "failed")


def test_a_fit_whose_workers_keep_dying_fails_with_a_problem_saying_so(
        settings: Settings, session_factory: SessionFactory, mood: pd.DataFrame) -> None:
    model_id, job_id = submit_fit(session_factory, mood, "Mood ~ Exercise", max_attempts=3)
    for dead in ("dead0", "dead1", "dead2"):  # the first claim and two recoveries, all lost
        with session_factory.begin() as session:
            assert jobs.claim_next(session, dead, lease_seconds=-1.0, max_recoveries=2)
    worker = Worker(settings.model_copy(update={"max_recoveries": 2}), session_factory)
    assert not worker.run_once()  # nothing to claim: the job is failed instead
    state = stored(session_factory, model_id, job_id)
    assert (state.model_status, state.job_status, state.attempts) == ("failed", "failed", 1)
    assert state.error is not None
    assert state.error["type"] == "urn:mixedfit:problem:fit-abandoned"
    assert state.error["status"] == 500
    assert state.error["title"] == "The workers running the fit kept dying"
    assert "stopped before the fit finished, 3 times" in state.error["detail"]
    assert "at most 2 times (MIXEDFIT_MAX_RECOVERIES)" in state.error["detail"]
    assert (state.error["attempts"], state.error["recoveries"]) == (1, 2)


def test_the_embedded_worker_fits_in_the_background_and_stops(
        settings: Settings, session_factory: SessionFactory, mood: pd.DataFrame) -> None:
    model_id, job_id = submit_fit(session_factory, mood, "Mood ~ Exercise")
    embedded = start_embedded_worker(settings.model_copy(update={"worker_poll_seconds": 0.05}))
    try:
        done = wait_for(lambda: stored(session_factory, model_id, job_id).model_status
                        == "succeeded", "the embedded worker's fit")
        assert done
    finally:
        embedded.stop()
    assert not embedded.running
