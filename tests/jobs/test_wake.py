"""A listening worker's nudge (a job was queued) survives the worker's back-offs: the retry of
a unit of work during a database outage, and the pause after an unexpected error. Before, the
back-off's wait took the nudge, and the job then waited for the next poll (5 s while
listening) once the worker was free."""

from __future__ import annotations

import threading
import time

from sqlalchemy import create_engine, text

from service.jobs import retry
from service.jobs.wake import WakeableStop, pause

# nothing listens on port 1: a connection there is refused at once, as during a restart
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/postgres?connect_timeout=2"


def _wake_after(stop: WakeableStop, seconds: float) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(seconds), stop.wake()))
    thread.start()
    return thread


def test_a_nudge_during_a_pause_is_kept_for_the_idle_wait() -> None:
    stop = WakeableStop()
    waker = _wake_after(stop, 0.1)
    started = time.monotonic()
    assert pause(stop, 0.6) is False
    assert time.monotonic() - started >= 0.55  # the nudge did not end the back-off
    waker.join()
    started = time.monotonic()
    assert stop.wait(5.0) is False
    assert time.monotonic() - started < 1.0  # the idle wait sees the job at once


def test_a_stop_ends_a_pause_at_once() -> None:
    stop = WakeableStop()
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    assert pause(stop, 10.0) is True
    assert time.monotonic() - started < 5.0


def test_a_retry_during_an_outage_keeps_the_nudge() -> None:
    engine = create_engine(UNREACHABLE)
    stop = WakeableStop()
    calls: list[float] = []

    def action() -> str:
        calls.append(time.monotonic())
        if len(calls) == 1:
            with engine.connect() as connection:  # a real refused connection
                connection.execute(text("SELECT 1"))
        return "stored"

    waker = _wake_after(stop, 0.1)
    try:
        assert retry.while_unavailable(action, "store a result", stop) == "stored"
    finally:
        engine.dispose()
    waker.join()
    assert len(calls) == 2
    assert calls[1] - calls[0] >= retry.FIRST_WAIT_SECONDS * 0.9
    started = time.monotonic()
    assert stop.wait(5.0) is False
    assert time.monotonic() - started < 1.0


def test_a_pause_on_a_plain_event_waits_its_time() -> None:
    stop, seconds = threading.Event(), 0.2
    started = time.monotonic()
    assert pause(stop, seconds) is False
    assert time.monotonic() - started >= seconds * 0.9
