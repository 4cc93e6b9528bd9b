"""Real worker processes (``python -m service.jobs.worker``) on SQLite and PostgreSQL.

The fits are real: a crossed mixed model on simulated data that takes seconds, so that a
worker can be killed in the middle of it and a time limit can cut it short.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.db.migrate import upgrade
from service.db.models import JobRow, utcnow
from service.db.session import create_db_engine, make_session_factory
from tests.db.factories import DATA, submit_fit
from tests.jobs.helpers import (
    SLOW_FORMULA,
    StartWorker,
    Stored,
    endless_lmm_data,
    slow_lmm_data,
    stored,
    wait_for,
    worker_processes,
)

pytestmark = pytest.mark.slow  # real worker processes

SessionFactory = sessionmaker[Session]
LEASE = 2.0
# the tests that kill worker after worker: short, so that each takeover comes soon
SHORT_LEASE = 1.5


@pytest.fixture
def start_worker(database_url: str, tmp_path: Path) -> Iterator[StartWorker]:
    """Start worker processes on the test database; each is killed at teardown if alive."""
    with worker_processes(database_url, tmp_path) as start:
        yield start


def _finished(session_factory: SessionFactory, model_id: str, job_id: str) -> Stored | None:
    state = stored(session_factory, model_id, job_id)
    # both ended: they are committed together, but the two reads of ``stored`` may fall on
    # either side of that commit (the job still running, the model already succeeded)
    ended = ("succeeded", "failed")
    return state if state.model_status in ended and state.job_status in ended else None


def _fitting(session_factory: SessionFactory, job_id: str, lease: float = LEASE) -> bool:
    """True once the worker has renewed the job's lease: its fit has been running a while."""
    with session_factory() as session:
        job = session.get(JobRow, job_id)
        assert job is not None
        if job.status != "running" or job.started_at is None or job.lease_expires_at is None:
            return False
        return job.lease_expires_at > job.started_at + timedelta(seconds=lease)


def _parents() -> dict[int, int]:
    """Each process id and its parent's, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _descendants(pid: int) -> set[int]:
    """Process ids below ``pid`` (its fork server and the fit it forked), from /proc."""
    parents = _parents()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def _fits(pid: int) -> set[int]:
    """The fit processes of worker ``pid``: its fork server's children."""
    if pid <= 1:
        return set()
    parents = _parents()
    servers = {child for child, parent in parents.items() if parent == pid}
    return {child for child, parent in parents.items() if parent in servers}


def _alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if _state(pid) not in (None, "Z")}


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def test_a_killed_worker_job_is_claimed_again_and_stored_once(
        session_factory: SessionFactory, start_worker: StartWorker) -> None:
    model_id, job_id = submit_fit(session_factory, slow_lmm_data(), SLOW_FORMULA)
    first = start_worker("first", lease_seconds=LEASE)
    wait_for(lambda: _fitting(session_factory, job_id), "the first worker to be fitting")
    helpers = _descendants(first.pid)
    assert len(helpers) >= 2  # the fork server and the fit
    first.send_signal(signal.SIGKILL)
    first.wait()
    # the orphaned fit quits instead of running on beside the next worker's
    wait_for(lambda: not _alive(helpers), "the killed worker's fit process to end", 60)
    state = stored(session_factory, model_id, job_id)
    assert (state.model_status, state.job_status, state.n_fixed_effects) == (
        "running", "running", 0)

    start_worker("second", lease_seconds=LEASE)
    final = wait_for(lambda: _finished(session_factory, model_id, job_id), "the fit to end")
    assert final.error is None
    # the killed worker's attempt was taken over, not spent
    assert (final.model_status, final.job_status, final.attempts) == (
        "succeeded", "succeeded", 1)
    assert final.n_fixed_effects == 2  # (Intercept), x: one result, not two
    assert final.n_metrics > 0


def _job_row(session_factory: SessionFactory, job_id: str) -> JobRow:
    with session_factory() as session:
        job = session.get(JobRow, job_id)
        assert job is not None
        return job


def _kill_holders(session_factory: SessionFactory, start: StartWorker, job_id: str,
                  kills: int, **settings: object) -> None:
    """SIGKILL the worker holding ``job_id`` in the middle of its fit, ``kills`` times.

    All ``kills`` + 1 workers start at once (each boots in seconds, together while the
    first fits), so each takeover comes as soon as the killed worker's lease runs out.
    Each time the killed worker's fit process must end before that lease does, that is
    before any other worker can take the job over.
    """
    workers = {worker.pid: worker for worker in
               (start(f"worker{i}", **settings) for i in range(kills + 1))}
    for kill in range(kills):
        wait_for(lambda: _fitting(session_factory, job_id, SHORT_LEASE)
                 and bool(_fits(_holder(session_factory, job_id))),
                 f"a worker to be fitting before kill {kill + 1}", 120)
        holder = workers[_holder(session_factory, job_id)]
        fits = _fits(holder.pid)
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        job = _job_row(session_factory, job_id)
        assert job.status == "running" and job.lease_expires_at is not None
        while _alive(fits):  # polled closely: the lifeline ends it within milliseconds
            assert utcnow() < job.lease_expires_at, "the killed worker's fit outlived its lease"
            time.sleep(0.005)
        assert utcnow() < job.lease_expires_at, "the killed worker's fit outlived its lease"


def _holder(session_factory: SessionFactory, job_id: str) -> int:
    """The process id of the worker holding the job (worker ids are host:pid:random)."""
    owner = _job_row(session_factory, job_id).lease_owner
    return int(owner.split(":")[1]) if owner else 0


def test_a_fit_outlives_more_worker_kills_than_it_has_attempts_on_one_attempt(
        session_factory: SessionFactory, start_worker: StartWorker) -> None:
    # two attempts, three workers killed mid-fit: each takeover is the same attempt
    model_id, job_id = submit_fit(session_factory, slow_lmm_data(n_a=1_200, n_b=600),
                                  SLOW_FORMULA, max_attempts=2)
    _kill_holders(session_factory, start_worker, job_id, 3, lease_seconds=SHORT_LEASE)
    final = wait_for(lambda: _finished(session_factory, model_id, job_id), "the fit to end")
    assert final.error is None
    assert (final.model_status, final.job_status, final.attempts) == (
        "succeeded", "succeeded", 1)
    assert _job_row(session_factory, job_id).recoveries == 3
    assert final.n_fixed_effects == 2  # one result, not several


def test_a_fit_whose_workers_keep_dying_fails_after_its_recoveries(
        session_factory: SessionFactory, start_worker: StartWorker) -> None:
    model_id, job_id = submit_fit(session_factory, slow_lmm_data(n_a=1_200, n_b=600),
                                  SLOW_FORMULA, max_attempts=3)
    # the first worker and both takeovers are killed; the standby then fails the job
    _kill_holders(session_factory, start_worker, job_id, 3, lease_seconds=SHORT_LEASE,
                  max_recoveries=2)
    final = wait_for(lambda: _finished(session_factory, model_id, job_id), "the job to fail")
    assert (final.model_status, final.job_status, final.attempts) == ("failed", "failed", 1)
    assert final.n_fixed_effects == 0
    assert final.error is not None
    assert final.error["type"] == "urn:mixedfit:problem:fit-abandoned"
    assert final.error["title"] == "The workers running the fit kept dying"
    assert "stopped before the fit finished, 3 times" in final.error["detail"]
    assert "MIXEDFIT_MAX_RECOVERIES" in final.error["detail"]
    assert (final.error["attempts"], final.error["recoveries"]) == (1, 2)
    job = _job_row(session_factory, job_id)
    assert job.recoveries == 2
    assert job.last_error is not None and "workers kept stopping" in job.last_error


def test_a_fit_over_its_time_limit_fails_and_the_worker_goes_on(
        session_factory: SessionFactory, start_worker: StartWorker) -> None:
    # minutes of fitting against a 3 second limit; the next job takes well under it
    slow_id, slow_job = submit_fit(session_factory, endless_lmm_data(), SLOW_FORMULA,
                                   max_attempts=3)
    fast_id, fast_job = submit_fit(session_factory, pd.read_csv(DATA / "mood.csv"),
                                   "Mood ~ Exercise")
    worker = start_worker("worker", fit_timeout_seconds=3, lease_seconds=LEASE)
    fast = wait_for(lambda: _finished(session_factory, fast_id, fast_job), "the next job")
    assert (fast.model_status, fast.job_status) == ("succeeded", "succeeded")

    slow = stored(session_factory, slow_id, slow_job)
    assert (slow.model_status, slow.job_status, slow.attempts) == ("failed", "failed", 1)
    assert slow.error is not None
    assert slow.error["type"] == "urn:mixedfit:problem:fit-timeout"
    assert "time limit of 3 seconds" in slow.error["detail"]
    assert "MIXEDFIT_FIT_TIMEOUT_SECONDS" in slow.error["detail"]
    assert worker.poll() is None


def test_sigterm_stops_the_worker_and_gives_its_job_back(
        session_factory: SessionFactory, start_worker: StartWorker) -> None:
    model_id, job_id = submit_fit(session_factory, endless_lmm_data(), SLOW_FORMULA)
    worker = start_worker("worker", lease_seconds=LEASE)
    wait_for(lambda: _fitting(session_factory, job_id), "the worker to be fitting")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=120) == 0
    state = stored(session_factory, model_id, job_id)
    # released, not failed: the interrupted attempt does not count
    assert (state.model_status, state.job_status, state.attempts) == ("queued", "queued", 0)


def test_a_worker_waits_for_migrations_then_works(empty_database_url: str,
                                                  tmp_path: Path) -> None:
    # compose starts workers and `mixedfit migrate` together: a worker must not crash on an
    # empty database, and must start working once the schema is there
    env = {**os.environ, "MIXEDFIT_DATABASE_URL": empty_database_url,
           "MIXEDFIT_WORKER_POLL_SECONDS": "0.1"}
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "service.jobs.worker"], env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "waiting for the database schema" in log.read_text(),
                 "the worker to report the missing schema")
        assert worker.poll() is None
        upgrade(empty_database_url)
        engine = create_db_engine(empty_database_url)
        try:
            session_factory = make_session_factory(engine)
            model_id, job_id = submit_fit(session_factory, pd.read_csv(DATA / "mood.csv"),
                                          "Mood ~ Exercise")
            done = wait_for(lambda: _finished(session_factory, model_id, job_id), "the fit")
            assert done.model_status == "succeeded"
        finally:
            engine.dispose()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        print(log.read_text()[-4000:])
    assert worker.returncode == 0
