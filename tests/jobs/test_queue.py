"""The jobs table as a queue: atomic claims, leases, attempts and recoveries (SQLite and
PostgreSQL)."""

from __future__ import annotations

import threading

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from service.jobs import repository as jobs
from tests.db.factories import DATA, submit_fit

SessionFactory = sessionmaker[Session]
MAX_RECOVERIES = 10
DEAD = -1.0  # a lease that has already run out: its worker died holding the job


def _submit(session_factory: SessionFactory, max_attempts: int = 3) -> str:
    _, job_id = submit_fit(session_factory, pd.read_csv(DATA / "mood.csv"), "Mood ~ Exercise",
                           max_attempts=max_attempts)
    return job_id


def _claim(session_factory: SessionFactory, worker: str, lease: float = 30.0,
           max_recoveries: int = MAX_RECOVERIES) -> str | None:
    with session_factory.begin() as session:
        job = jobs.claim_next(session, worker, lease, max_recoveries=max_recoveries)
        return None if job is None else job.id


def _job(session_factory: SessionFactory, job_id: str) -> tuple[str, int, str | None]:
    with session_factory() as session:
        job = jobs.get_job(session, job_id)
        assert job is not None
        return job.status, job.attempts, job.lease_owner


def _counts(session_factory: SessionFactory, job_id: str) -> tuple[str, int, int]:
    """The job's status, attempts and recoveries."""
    with session_factory() as session:
        job = jobs.get_job(session, job_id)
        assert job is not None
        return job.status, job.attempts, job.recoveries


def test_a_claimed_job_is_leased_to_its_worker_only(session_factory: SessionFactory) -> None:
    job_id = _submit(session_factory)
    assert _claim(session_factory, "a") == job_id
    assert _claim(session_factory, "b") is None
    assert _job(session_factory, job_id) == ("running", 1, "a")
    with session_factory.begin() as session:
        assert jobs.renew_lease(session, job_id, "a", 30.0)
        assert not jobs.renew_lease(session, job_id, "b", 30.0)
        assert not jobs.complete(session, job_id, "b")
        assert jobs.complete(session, job_id, "a")
    assert _job(session_factory, job_id) == ("succeeded", 1, None)


def test_jobs_are_claimed_oldest_first(session_factory: SessionFactory) -> None:
    first, second = _submit(session_factory), _submit(session_factory)
    assert [_claim(session_factory, "w"), _claim(session_factory, "w")] == [first, second]


def _race(session_factory: SessionFactory, n_workers: int) -> list[str | None]:
    """Let ``n_workers`` (own threads, own connections) claim at the same moment."""
    start = threading.Barrier(n_workers)
    claims: list[str | None] = []
    lock = threading.Lock()

    def race(worker: str) -> None:
        start.wait()
        claimed = _claim(session_factory, worker)
        with lock:
            claims.append(claimed)

    threads = [threading.Thread(target=race, args=(f"w{i}",)) for i in range(n_workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return claims


def test_racing_workers_claim_each_job_exactly_once(session_factory: SessionFactory) -> None:
    for _ in range(5):
        job_id = _submit(session_factory)
        claims = _race(session_factory, 8)
        assert (claims.count(job_id), claims.count(None)) == (1, 7)
        assert _job(session_factory, job_id)[:2] == ("running", 1)


def test_an_expired_lease_is_recovered_without_spending_an_attempt(
        session_factory: SessionFactory) -> None:
    job_id = _submit(session_factory)
    assert _claim(session_factory, "dead", lease=DEAD) == job_id
    assert _claim(session_factory, "alive") == job_id
    assert _job(session_factory, job_id) == ("running", 1, "alive")
    assert _counts(session_factory, job_id) == ("running", 1, 1)
    # the dead worker's claim is void: no write of its own gets through, so its fit (if it
    # ran on) cannot store a result beside the new owner's
    with session_factory.begin() as session:
        assert jobs.lock_if_held(session, job_id, "dead") is None
        assert not jobs.renew_lease(session, job_id, "dead", 30.0)
        assert jobs.fail(session, job_id, "dead", "late", retry=True) is None
        assert not jobs.complete(session, job_id, "dead")
        assert not jobs.release(session, job_id, "dead")
        assert jobs.lock_if_held(session, job_id, "alive") is not None
    assert _counts(session_factory, job_id) == ("running", 1, 1)


def test_a_job_outlives_more_dead_workers_than_it_has_attempts(
        session_factory: SessionFactory) -> None:
    job_id = _submit(session_factory, max_attempts=1)
    for i in range(4):
        assert _claim(session_factory, f"dead{i}", lease=DEAD) == job_id
    assert _claim(session_factory, "alive") == job_id
    with session_factory.begin() as session:
        assert jobs.take_exhausted(session, max_recoveries=MAX_RECOVERIES) == []
        assert jobs.complete(session, job_id, "alive")
    assert _counts(session_factory, job_id) == ("succeeded", 1, 4)


def test_recoveries_are_capped_and_the_job_then_fails(session_factory: SessionFactory) -> None:
    job_id = _submit(session_factory, max_attempts=3)
    for i in range(3):  # the first claim and two recoveries, all lost
        assert _claim(session_factory, f"dead{i}", lease=DEAD, max_recoveries=2) == job_id
    assert _claim(session_factory, "next", max_recoveries=2) is None
    with session_factory.begin() as session:
        exhausted = jobs.take_exhausted(session, max_recoveries=2)
        assert [job.id for job in exhausted] == [job_id]
    assert _counts(session_factory, job_id) == ("failed", 1, 2)
    with session_factory() as session:
        job = jobs.get_job(session, job_id)
        assert job is not None and job.lease_owner is None and job.finished_at is not None
        assert job.last_error is not None
        assert "its workers kept stopping: the job lost its worker 3 times" in job.last_error
    assert _claim(session_factory, "later", max_recoveries=2) is None


def test_a_live_lease_is_never_taken_for_exhausted(session_factory: SessionFactory) -> None:
    job_id = _submit(session_factory)
    assert _claim(session_factory, "dead", lease=DEAD, max_recoveries=1) == job_id
    assert _claim(session_factory, "alive", max_recoveries=1) == job_id  # the last recovery
    with session_factory.begin() as session:
        assert jobs.take_exhausted(session, max_recoveries=1) == []
        assert jobs.complete(session, job_id, "alive")
    assert _counts(session_factory, job_id) == ("succeeded", 1, 1)


def test_attempts_spent_by_the_fit_and_recoveries_are_counted_apart(
        session_factory: SessionFactory) -> None:
    job_id = _submit(session_factory, max_attempts=2)
    assert _claim(session_factory, "dead", lease=DEAD) == job_id
    assert _claim(session_factory, "w1") == job_id
    with session_factory.begin() as session:  # the fit's child crashed: retried
        assert jobs.fail(session, job_id, "w1", "crashed", retry=True) == "queued"
    assert _counts(session_factory, job_id) == ("queued", 1, 1)
    assert _claim(session_factory, "w2") == job_id
    assert _counts(session_factory, job_id) == ("running", 2, 1)
    with session_factory.begin() as session:  # and again: no attempt left
        assert jobs.fail(session, job_id, "w2", "crashed", retry=True) == "failed"
    assert _counts(session_factory, job_id) == ("failed", 2, 1)


def test_a_recovered_job_released_restarts_the_same_attempt(
        session_factory: SessionFactory) -> None:
    job_id = _submit(session_factory, max_attempts=1)
    assert _claim(session_factory, "dead", lease=DEAD) == job_id
    assert _claim(session_factory, "stopping") == job_id
    with session_factory.begin() as session:
        assert jobs.release(session, job_id, "stopping")
    assert _counts(session_factory, job_id) == ("queued", 0, 1)
    assert _claim(session_factory, "next") == job_id
    assert _counts(session_factory, job_id) == ("running", 1, 1)


def test_racing_workers_recover_an_expired_job_exactly_once(
        session_factory: SessionFactory) -> None:
    for _ in range(3):
        job_id = _submit(session_factory)
        assert _claim(session_factory, "dead", lease=DEAD) == job_id
        claims = _race(session_factory, 8)
        assert (claims.count(job_id), claims.count(None)) == (1, 7)
        assert _counts(session_factory, job_id) == ("running", 1, 1)


def test_failed_attempts_are_retried_until_none_is_left(session_factory: SessionFactory) -> None:
    job_id = _submit(session_factory, max_attempts=2)
    statuses = []
    for worker in ("w1", "w2"):
        assert _claim(session_factory, worker) == job_id
        with session_factory.begin() as session:
            statuses.append(jobs.fail(session, job_id, worker, "timed out", retry=True))
    assert statuses == ["queued", "failed"]
    assert _claim(session_factory, "w3") is None


def test_a_released_job_keeps_its_attempt(session_factory: SessionFactory) -> None:
    job_id = _submit(session_factory, max_attempts=1)
    assert _claim(session_factory, "stopping") == job_id
    with session_factory.begin() as session:
        assert jobs.release(session, job_id, "stopping")
    assert _job(session_factory, job_id) == ("queued", 0, None)
    assert _claim(session_factory, "next") == job_id


def test_count_by_status_covers_every_status(session_factory: SessionFactory) -> None:
    first, _second = _submit(session_factory), _submit(session_factory)
    assert _claim(session_factory, "w") == first
    with session_factory() as session:
        assert jobs.count_by_status(session) == {"queued": 1, "running": 1, "succeeded": 0,
                                                 "failed": 0}
