"""The worker loop: claim a job, run it, repeat; ``python -m service.jobs.worker`` runs one.

Any number of worker processes, on any machines, can share one database: the queue's
claim is atomic and leases let a job outlive the worker that first claimed it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from types import FrameType
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.context import LogContext, bound
from service.db import notify
from service.db.migrate import display_url, schema_problem
from service.db.models import JobRow
from service.db.notify import start_listener
from service.db.session import create_db_engine, is_database_unavailable, make_session_factory
from service.jobs import repository as jobs
from service.jobs import retry
from service.jobs.kinds import job_kind
from service.jobs.runner import warm_up
from service.jobs.tasks import TaskContext, fail_abandoned
from service.jobs.wake import WakeableStop, pause
from service.models import retention
from service.ops.logs import configure_logging
from service.settings import Settings, get_settings

log = logging.getLogger(__name__)

# how a claimed job of some kind is run: (the job, its task context, what the claim read),
# as ``JobKind.run``
KindRun = Callable[[JobRow, TaskContext, Any], None]

# after an unexpected error (database down, ...) wait this long before trying again
ERROR_BACKOFF_SECONDS = 2.0
# how often a worker looks for jobs whose workers kept dying (a query of its own, once on
# every claim before: a millisecond of each small fit's round trip for a rare event)
ABANDONED_CHECK_SECONDS = 5.0


def job_context(job: JobRow) -> LogContext:
    """The log fields of a claimed job: its id, its model's, the attempt, and the id of
    the request that queued it."""
    return LogContext(request_id=job.request_id, job_id=job.id, attempt=job.attempts,
                      model_id=job.target_id if job.kind == "fit" else None)


def make_worker_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Claims and runs jobs one at a time."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session],
                 worker_id: str | None = None) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.worker_id = worker_id or make_worker_id()
        # set by run_forever's caller; run_once alone never stops midway
        self._stop = threading.Event()
        # the job the last run_once claimed (None: it found none)
        self.last_job: JobRow | None = None
        self._next_abandoned_check = 0.0  # the first claim checks
        # the other jobs claimable when the last claim looked (0: none but what was queued
        # since; None: not known, look again at once)
        self.others_waiting: int | None = None

    def run_once(self) -> bool:
        """Claim one job and run it to its end; False when the queue had nothing to claim."""
        retention.maybe_prune(self.session_factory, self.settings)  # once a minute at most
        with self.session_factory.begin() as session:
            if time.monotonic() >= self._next_abandoned_check:
                fail_abandoned(session, self.settings.max_recoveries)
                self._next_abandoned_check = time.monotonic() + ABANDONED_CHECK_SECONDS
            job, self.others_waiting = jobs.claim_next_counted(
                session, self.worker_id, self.settings.lease_seconds,
                max_recoveries=self.settings.max_recoveries)
            self.last_job = job
            kind = job_kind(job.kind) if job is not None else None
            claimed = None
            if job is not None and kind is not None:
                claimed = kind.claimed(session, job)
        if job is None:
            return False
        self.run_claimed(job, claimed)
        return True

    def run_claimed(self, job: JobRow, claimed: Any, run: KindRun | None = None) -> None:
        """Run a job this worker holds to its end; ``claimed``: what its kind read with the
        claim (``JobKind.claimed``), for ``run`` (by default, its kind's)."""
        kind = job_kind(job.kind)
        # every line until the job ends carries its ids and the request that queued it
        with bound(job_context(job)):
            log.info("job %s (%s %s) claimed by %s, attempt %d of %d%s", job.id, job.kind,
                     job.target_id, self.worker_id, job.attempts, job.max_attempts,
                     f", recoveries {job.recoveries} of {self.settings.max_recoveries}"
                     if job.recoveries else "")
            context = TaskContext(self.settings, self.session_factory, self.worker_id,
                                  self._stop)
            if run is not None:
                run(job, context, claimed)
            elif kind is not None:
                kind.run(job, context, claimed)
            else:
                with self.session_factory.begin() as session:
                    jobs.fail(session, job.id, self.worker_id,
                              f"unknown job kind {job.kind!r}", retry=False)
            log.info("job %s done", job.id)

    def run_forever(self, stop: threading.Event,
                    listening: Callable[[], bool] | None = None) -> None:
        """Work until ``stop`` is set; a running fit is then cut short and its job released.

        ``listening``: whether a queued job wakes ``stop`` now (PostgreSQL's notifications
        are heard), so that the idle poll is only the fallback (``idle_poll_seconds``)."""
        self._stop = stop
        log.info("worker %s started", self.worker_id)
        unavailable = False
        while not stop.is_set():
            try:
                worked = self.run_once()
            except Exception as error:
                # a job claimed before the error keeps its lease until it runs out, and is
                # then claimed again: nothing is lost, and the worker lives on
                if not is_database_unavailable(error):
                    log.exception("worker %s: unexpected error; retrying", self.worker_id)
                elif not unavailable:  # once per outage, not every few seconds
                    log.warning("worker %s: the database is unavailable (%s); retrying",
                                self.worker_id, retry.describe(error))
                unavailable = is_database_unavailable(error)
                pause(stop, ERROR_BACKOFF_SECONDS)
                continue
            if unavailable:
                log.info("worker %s: the database is back", self.worker_id)
                unavailable = False
            told = listening is not None and listening()
            if not worked or (told and self.others_waiting == 0):
                # nothing to claim; or nothing else was when this job was claimed, and a
                # job queued since has woken the wait (it returns at once): no empty claim
                # after each job, its statements beside the waiting client's read
                stop.wait(idle_poll_seconds(self.settings, told))
        log.info("worker %s stopped", self.worker_id)


def idle_poll_seconds(settings: Settings, listening: bool) -> float:
    """How long an idle worker waits before it looks for jobs again, unless woken.

    Without notifications, ``worker_poll_seconds``. While they are heard, every job that
    becomes queued (inserted, retried, released) wakes the worker, and the poll is left to
    find what is not announced: a running job whose lease ran out (its worker died), found
    within a quarter of the lease after it did. Two idle workers polling four times a
    second cost a few percent of a core between them, and their PostgreSQL sessions as
    much again, taken from whatever else the machine runs."""
    if not listening:
        return settings.worker_poll_seconds
    fallback = min(settings.worker_listening_poll_seconds, settings.lease_seconds / 4)
    return max(settings.worker_poll_seconds, fallback)


def wait_for_schema(session_factory: sessionmaker[Session], stop: threading.Event, *,
                    announce: bool = True) -> bool:
    """Wait until migrations are applied (``mixedfit migrate`` may still be running).

    Says once what is missing (``announce``; the API of ``mixedfit serve`` already said
    it for its embedded worker), and once that the database cannot be reached, instead of
    a traceback per poll. False when ``stop`` was set first.
    """
    engine = session_factory.kw["bind"]
    said: set[str] = set()
    while not stop.is_set():
        try:
            problem = schema_problem(engine)
        except Exception as error:
            if is_database_unavailable(error) and "unavailable" not in said:
                log.warning("the database %s cannot be reached (%s); waiting for it",
                            display_url(engine), retry.describe(error))
                said.add("unavailable")
            elif not is_database_unavailable(error):
                log.debug("database not ready: %s", error)
        else:
            if problem is None:
                if said:
                    log.info("the database schema is current; starting")
                return True
            if "schema" not in said:
                (log.warning if announce else log.debug)(
                    "%s The worker is waiting for the database schema.", problem)
                said.add("schema")
        pause(stop, ERROR_BACKOFF_SECONDS)
    return False


def run_worker_process(settings: Settings | None = None) -> None:
    """A standalone worker until SIGTERM or SIGINT, which end it gracefully."""
    settings = settings or get_settings()
    # woken early by PostgreSQL's NOTIFY of a queued job (migration 0009), so a fit is
    # claimed at once; polling every MIXEDFIT_WORKER_POLL_SECONDS remains the fallback
    stop = WakeableStop()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    engine = create_db_engine(settings.database_url)
    listener = start_listener(settings.database_url, [notify.JOBS],
                              lambda _channel, _payload: stop.wake())
    try:
        session_factory = make_session_factory(engine)
        if wait_for_schema(session_factory, stop):
            warm_up()
            Worker(settings, session_factory).run_forever(
                stop, None if listener is None else listener.connected.is_set)
    finally:
        if listener is not None:
            listener.stop()
        engine.dispose()


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_format)
    run_worker_process(settings)


if __name__ == "__main__":
    main()
