"""PostgreSQL notifications (migration 0009's triggers, service.db.notify's Listener): a
queued job and a finished fit are heard at once, and a listener whose connection is killed
reconnects and says so (its caller then looks for what it missed)."""

from __future__ import annotations

import queue

import pandas as pd
import pytest
from sqlalchemy import text, update
from sqlalchemy.orm import Session, sessionmaker

from service.db import notify
from service.db.models import ModelRow
from tests.db.factories import submit_fit

HEARD_SECONDS = 10.0


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if database_url.startswith("sqlite"):
        pytest.skip("notifications are PostgreSQL's (SQLite: in-process wake and polling)")
    return database_url


def _listen(url: str) -> tuple[notify.Listener, queue.Queue[str], queue.Queue[str | None]]:
    heard: queue.Queue[str] = queue.Queue()
    payloads: queue.Queue[str | None] = queue.Queue()

    def on_notify(channel: str, payload: str | None) -> None:
        payloads.put(payload)
        heard.put(channel)

    listener = notify.start_listener(url, [notify.JOBS, notify.FINISHED], on_notify)
    assert listener is not None
    assert listener.connected.wait(HEARD_SECONDS)
    # the calls made on connecting (what happened while not listening): no payload
    assert {heard.get(timeout=HEARD_SECONDS), heard.get(timeout=HEARD_SECONDS)} == {
        notify.JOBS, notify.FINISHED}
    assert [payloads.get_nowait(), payloads.get_nowait()] == [None, None]
    return listener, heard, payloads


def test_a_queued_job_and_a_finished_fit_are_heard(
        postgres_url: str, session_factory: sessionmaker[Session]) -> None:
    listener, heard, payloads = _listen(postgres_url)
    try:
        model_id, _ = submit_fit(session_factory, pd.DataFrame({"y": [1.0, 2.0], "x": [1, 2]}),
                              "y ~ x")
        assert heard.get(timeout=HEARD_SECONDS) == notify.JOBS
        assert payloads.get_nowait() == "fit"  # the job's kind
        with session_factory.begin() as session:
            session.execute(update(ModelRow).where(ModelRow.id == model_id)
                            .values(status="running"))
        with session_factory.begin() as session:
            session.execute(update(ModelRow).where(ModelRow.id == model_id)
                            .values(status="succeeded"))
        assert heard.get(timeout=HEARD_SECONDS) == notify.FINISHED
        assert payloads.get_nowait() == model_id  # its waiters are woken by its id
        assert heard.empty()  # "running" is not a finish
    finally:
        listener.stop()


def test_a_listener_whose_connection_dies_reconnects(
        postgres_url: str, session_factory: sessionmaker[Session]) -> None:
    listener, heard, _ = _listen(postgres_url)
    try:
        with session_factory.begin() as session:
            killed = session.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'")).all()
        assert killed
        # reconnected: it says so for every channel, then hears new notifications
        assert {heard.get(timeout=HEARD_SECONDS), heard.get(timeout=HEARD_SECONDS)} == {
            notify.JOBS, notify.FINISHED}
        submit_fit(session_factory, pd.DataFrame({"y": [1.0, 2.0], "x": [1, 2]}), "y ~ x")
        assert heard.get(timeout=HEARD_SECONDS) == notify.JOBS
    finally:
        listener.stop()


def test_there_is_no_listener_on_sqlite() -> None:
    assert notify.start_listener("sqlite:///x.db", [notify.JOBS], print) is None
