"""The in-process worker of ``mixedfit serve``: the worker loop on a background thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from service.db.session import create_db_engine, make_session_factory
from service.jobs.wake import WakeableStop
from service.jobs.worker import Worker, wait_for_schema
from service.settings import Settings

# called with the kind and the target of each job the worker has finished with
AfterJob = Callable[[str, str], None]


class _ReportingWorker(Worker):
    """A worker that calls ``after_job`` each time it has finished with a job (the API's
    long polls in this process are then answered at once)."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session],
                 after_job: AfterJob | None) -> None:
        super().__init__(settings, session_factory)
        self.after_job = after_job

    def run_once(self) -> bool:
        worked = super().run_once()
        job = self.last_job
        if worked and job is not None and self.after_job is not None:
            self.after_job(job.kind, job.target_id)
        return worked


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
