"""Keeping a claimed job's lease while its work runs in a child process."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from service.db.models import JobRow
from service.db.session import READS_ONLY
from service.jobs import repository as jobs

log = logging.getLogger("service.jobs.tasks")

# the stop flag is looked at this often, so that shutting down does not wait for a renewal
STOP_CHECK_SECONDS = 0.5


class LeaseKeeper:
    """``tick()`` is the runner's ``on_tick``: it renews the lease every third of its length
    and says whether to go on (False once the worker is stopping or the lease was lost to
    another worker, ``lost`` then set)."""

    def __init__(self, job: JobRow, session_factory: sessionmaker[Session], worker_id: str,
                 lease_seconds: float, stop: threading.Event) -> None:
        self.job = job
        self.session_factory = session_factory
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.stop = stop
        self.lost = threading.Event()
        self.renew_every = lease_seconds / 3
        self.tick_seconds = min(self.renew_every, STOP_CHECK_SECONDS)
        self._failing = False
        self._last_renewal = time.monotonic()

    def tick(self) -> bool:
        if self.stop.is_set():
            return False
        if time.monotonic() - self._last_renewal < self.renew_every:
            # between renewals, a read: a cancelled job (POST /v1/models/{id}/cancel) has
            # lost its owner, and its fit is stopped at this tick, within a second
            return self._still_held()
        return self._renew()

    def _still_held(self) -> bool:
        try:
            with self.session_factory() as session:
                # read-only: on SQLite a deferred BEGIN, never the write lock
                session.connection(execution_options={READS_ONLY: True})
                held = jobs.is_held(session, self.job.id, self.worker_id)
        except Exception:
            return True  # an outage: the renewal says so, and the write at the end decides
        if not held:
            self.lost.set()
        return held

    def _renew(self) -> bool:
        try:
            with self.session_factory.begin() as session:
                held = jobs.renew_lease(session, self.job.id, self.worker_id,
                                        self.lease_seconds)
        except Exception:
            # a database outage should not cost long work: go on, and if the lease runs
            # out meanwhile and another worker takes the job, the write at the end finds it
            # taken and discards this result; said once per outage, tried every tick
            if not self._failing:
                self._failing = True
                log.warning("job %s: lease renewal failed; working on", self.job.id,
                            exc_info=True)
            return True
        if self._failing:
            self._failing = False
            log.info("job %s: lease renewed again", self.job.id)
        self._last_renewal = time.monotonic()
        if not held:
            self.lost.set()
        return held
