"""A worker that hears PostgreSQL's notifications polls only as the fallback: idle, it
leaves the database alone; a queued job still wakes it at once, and a job whose worker
died (a lease that ran out, which nothing announces) is still taken over, within a
quarter of the lease."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from service.db import notify
from service.jobs import repository as jobs
from service.jobs.wake import WakeableStop
from service.jobs.worker import Worker, idle_poll_seconds
from service.settings import Settings
from tests.db.factories import DATA, submit_fit
from tests.jobs.helpers import stored, wait_for

SessionFactory = sessionmaker[Session]


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if database_url.startswith("sqlite"):
        pytest.skip("notifications are PostgreSQL's (SQLite: in-process wake and polling)")
    return database_url


@pytest.fixture
def mood() -> pd.DataFrame:
    return pd.read_csv(DATA / "mood.csv")


@contextmanager
def listening_worker(settings: Settings, session_factory: SessionFactory
                     ) -> Iterator[list[float]]:
    """A worker running on a thread, woken by a real listener as ``mixedfit worker`` is;
    yields the moments its database transactions began (each poll begins one)."""
    began: list[float] = []

    def on_begin(_connection: object) -> None:
        began.append(time.monotonic())

    engine = session_factory.kw["bind"]
    event.listen(engine, "begin", on_begin)
    stop = WakeableStop()
    listener = notify.start_listener(settings.database_url, [notify.JOBS],
                                     lambda _channel, _payload: stop.wake())
    assert listener is not None
    assert listener.connected.wait(10.0)
    worker = Worker(settings, session_factory)
    thread = threading.Thread(target=worker.run_forever,
                              args=(stop, listener.connected.is_set), daemon=True)
    thread.start()
    try:
        yield began
    finally:
        stop.set()
        thread.join(30.0)
        listener.stop()
        event.remove(engine, "begin", on_begin)
    assert not thread.is_alive()


def test_an_idle_listening_worker_polls_rarely_and_a_queued_job_wakes_it(
        postgres_url: str, session_factory: SessionFactory, mood: pd.DataFrame) -> None:
    settings = Settings(database_url=postgres_url, lease_seconds=30.0,
                        worker_poll_seconds=0.05, worker_listening_poll_seconds=5.0)
    with listening_worker(settings, session_factory) as began:
        time.sleep(1.5)
        # at 0.05 s a poll that would be 30; listening, the first look and nothing more
        # (the wake on connecting may add one)
        assert len(began) <= 2, f"{len(began)} transactions in 1.5 s idle"
        queued_at = time.monotonic()
        model_id, job_id = submit_fit(session_factory, mood, "Mood ~ Exercise")
        assert wait_for(lambda: stored(session_factory, model_id, job_id).model_status
                        == "succeeded", "the woken worker's fit")
        # claimed on the notification: long before the 5 s fallback poll was due
        claims = [moment for moment in began if moment > queued_at]
        assert claims and claims[0] - queued_at < 2.0


def test_a_dead_workers_job_is_taken_over_by_the_fallback_poll(
        postgres_url: str, session_factory: SessionFactory, mood: pd.DataFrame) -> None:
    model_id, job_id = submit_fit(session_factory, mood, "Mood ~ Exercise")
    with session_factory.begin() as session:  # claimed by a worker that died at once
        assert jobs.claim_next(session, "dead", lease_seconds=-1.0, max_recoveries=3)
    # a 1 s lease: the fallback poll every 0.25 s (a quarter of it), not every 5 s
    settings = Settings(database_url=postgres_url, lease_seconds=1.0,
                        worker_poll_seconds=0.05, worker_listening_poll_seconds=5.0)
    assert idle_poll_seconds(settings, listening=True) == 0.25
    with listening_worker(settings, session_factory):
        assert wait_for(lambda: stored(session_factory, model_id, job_id).model_status
                        == "succeeded", "the taken-over fit")
    state = stored(session_factory, model_id, job_id)
    assert (state.job_status, state.attempts) == ("succeeded", 1)


def test_the_idle_poll_is_the_fallback_only_while_listening() -> None:
    settings = Settings(worker_poll_seconds=0.25, worker_listening_poll_seconds=5.0,
                        lease_seconds=30.0)
    assert idle_poll_seconds(settings, listening=False) == 0.25
    assert idle_poll_seconds(settings, listening=True) == 5.0
    # a quarter of a short lease, never more often than the plain poll
    assert idle_poll_seconds(settings.model_copy(update={"lease_seconds": 8.0}), True) == 2.0
    assert idle_poll_seconds(settings.model_copy(update={"lease_seconds": 0.4}), True) == 0.25


@contextmanager
def claims_seen(session_factory: SessionFactory) -> Iterator[list[float]]:
    """The moments claims began on ``session_factory``'s engine (a claim's first
    statement counts the claimable jobs by tenant)."""
    moments: list[float] = []

    def on_statement(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "GROUP BY jobs.tenant" in statement:
            moments.append(time.monotonic())

    engine = session_factory.kw["bind"]
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        yield moments
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)


def test_after_a_job_with_nothing_else_waiting_a_listening_worker_does_not_claim(
        postgres_url: str, session_factory: SessionFactory, mood: pd.DataFrame) -> None:
    settings = Settings(database_url=postgres_url, lease_seconds=30.0,
                        worker_poll_seconds=0.05, worker_listening_poll_seconds=5.0)
    with claims_seen(session_factory) as claims, listening_worker(settings, session_factory):
        time.sleep(0.5)  # the worker's first looks, at its start
        submitted = time.monotonic()
        model_id, job_id = submit_fit(session_factory, mood, "Mood ~ Exercise")
        wait_for(lambda: stored(session_factory, model_id, job_id).model_status
                 == "succeeded", "the fit")
        time.sleep(1.0)
        # the claim that took the fit, and no other: nothing else was claimable then, and
        # nothing was queued since, so it waits for a notification (or the 5 s fallback)
        assert len([moment for moment in claims if moment > submitted]) == 1


def test_jobs_queued_while_a_listening_worker_fits_are_claimed_at_once(
        postgres_url: str, session_factory: SessionFactory, mood: pd.DataFrame) -> None:
    """However the queue looked when a job was claimed, what is queued after the claim is
    taken at once: a backlog queued together, and a job queued while the worker fits."""
    settings = Settings(database_url=postgres_url, lease_seconds=30.0,
                        worker_poll_seconds=0.05, worker_listening_poll_seconds=5.0)
    with listening_worker(settings, session_factory):
        start = time.monotonic()
        backlog = [submit_fit(session_factory, mood, "Mood ~ Exercise") for _ in range(3)]
        first = backlog[0]
        wait_for(lambda: stored(session_factory, *first).job_status != "queued", "a claim")
        later = submit_fit(session_factory, mood, "Mood ~ Exercise + (1 | State)")
        for model_id, job_id in [*backlog, later]:
            wait_for(lambda m=model_id, j=job_id: stored(session_factory, m, j).model_status
                     == "succeeded", "each fit")
        # four small fits, one after another: far less than one 5 s fallback poll
        assert time.monotonic() - start < 4.0
