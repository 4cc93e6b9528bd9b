"""The in-process worker of ``mixedfit serve``: the worker loop on a background thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from service.db.models import JobRow
from service.db.session import create_db_engine, make_session_factory
from service.jobs.child import FitRequest
from service.jobs.repository import Lease
from service.jobs.tasks import TaskContext, release, run_handed_fit
from service.jobs.wake import WakeableStop
from service.jobs.worker import Worker, wait_for_schema
from service.settings import Settings

# called with the kind and the target of each job the worker has finished with
AfterJob = Callable[[str, str], None]


class _ReportingWorker(Worker):
    """A worker that calls ``after_job`` each time it has finished with a job (the API's
    long polls in this process are then answered at once), and that can be handed a fit
    directly (``reserve``, ``hand``): queued by a request of this process while it was
    idle, inserted already claimed by it, so that it neither polls nor claims it."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session],
                 after_job: AfterJob | None) -> None:
        super().__init__(settings, session_factory)
        self.after_job = after_job
        self._lock = threading.Lock()
        self._idle = False  # its last claim found nothing; it waits for a wake or a poll
        self._reserved = False  # a request is inserting a job claimed by it
        self._handed: tuple[JobRow, FitRequest] | None = None

    @property
    def idle(self) -> bool:
        """Whether its last claim found nothing and no fit is reserved for it."""
        with self._lock:
            return self._idle and not self._reserved and self._handed is None

    def reserve(self) -> Lease | None:
        """The claim for a fit that a request is about to insert, if this worker is idle:
        until ``hand`` or ``unreserve``, it claims nothing else. None: busy (queue it)."""
        with self._lock:
            if not self._idle or self._reserved or self._handed is not None:
                return None
            self._reserved = True
            return Lease(self.worker_id, self.settings.lease_seconds)

    def hand(self, job: JobRow, request: FitRequest) -> None:
        """The fit reserved for this worker, its job committed as claimed by it."""
        with self._lock:
            self._reserved, self._handed = False, (job, request)

    def unreserve(self) -> None:
        """The reserved fit was not inserted after all."""
        with self._lock:
            self._reserved = False

    def run_once(self) -> bool:
        with self._lock:
            handed, self._handed = self._handed, None
            if handed is None and self._reserved:
                return False  # its fit is being inserted: ``hand`` wakes this worker
            self._idle = False
        if handed is not None:
            self.last_job = handed[0]
            self.run_claimed(handed[0], handed[1], run=run_handed_fit)
            worked = True
        else:
            worked = super().run_once()
        job = self.last_job
        if worked and job is not None and self.after_job is not None:
            self.after_job(job.kind, job.target_id)
        if not worked:
            with self._lock:
                self._idle = True
        return worked

    def release_handed(self) -> None:
        """A fit handed over as the worker stopped goes back to the queue."""
        with self._lock:
            handed, self._handed = self._handed, None
        if handed is not None:
            release(handed[0], TaskContext(self.settings, self.session_factory,
                                           self.worker_id, self._stop))


class EmbeddedWorker:
    def __init__(self, settings: Settings, after_job: AfterJob | None = None) -> None:
        self._engine = create_db_engine(settings.database_url)
        self.worker = _ReportingWorker(settings, make_session_factory(self._engine), after_job)
        self._stop = WakeableStop()
        self._thread = threading.Thread(target=self._run, name="mixedfit-worker", daemon=True)

    def _run(self) -> None:
        # an unmigrated database: wait for `mixedfit migrate` (the API has said so) rather
        # than fail every poll
        if wait_for_schema(self.worker.session_factory, self._stop, announce=False):
            self.worker.run_forever(self._stop)
            self.worker.release_handed()

    @property
    def idle(self) -> bool:
        """Whether the worker waits for work (a fit posted with ``?wait=`` is handed to it)."""
        return self.worker.idle

    @property
    def worker_id(self) -> str:
        return self.worker.worker_id

    def reserve(self) -> Lease | None:
        """See ``_ReportingWorker.reserve`` (thread-safe, as are ``hand`` and ``unreserve``)."""
        if not self._thread.is_alive() or self._stop.is_set():
            return None  # stopping: its fit goes to the queue, for the next start
        return self.worker.reserve()

    def hand(self, job: JobRow, request: FitRequest) -> None:
        self.worker.hand(job, request)
        self._stop.wake()

    def unreserve(self) -> None:
        self.worker.unreserve()
        self._stop.wake()

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """A job was queued: look for it now rather than at the next poll (thread-safe)."""
        self._stop.wake()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the loop; a fit in progress is cut short and its job goes back to the queue."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._engine.dispose()


def start_embedded_worker(settings: Settings,
                          after_job: AfterJob | None = None) -> EmbeddedWorker:
    """Start a worker thread on ``settings.database_url``; it starts claiming jobs once the
    schema is current. ``after_job`` is called (on the worker's thread) after each job,
    with its kind and target."""
    worker = EmbeddedWorker(settings, after_job)
    worker.start()
    return worker
