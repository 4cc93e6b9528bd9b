"""The in-process worker of ``mixedfit serve``: the worker loop on a background thread."""

from __future__ import annotations

import threading

from service.db.session import create_db_engine, make_session_factory
from service.jobs.worker import Worker, wait_for_schema
from service.settings import Settings


class EmbeddedWorker:
    def __init__(self, settings: Settings) -> None:
        self._engine = create_db_engine(settings.database_url)
        self.worker = Worker(settings, make_session_factory(self._engine))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mixedfit-worker", daemon=True)

    def _run(self) -> None:
        # an unmigrated database: wait for `mixedfit migrate` (the API has said so) rather
        # than fail every poll
        if wait_for_schema(self.worker.session_factory, self._stop, announce=False):
            self.worker.run_forever(self._stop)

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the loop; a fit in progress is cut short and its job goes back to the queue."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._engine.dispose()


def start_embedded_worker(settings: Settings) -> EmbeddedWorker:
    """Start a worker thread on ``settings.database_url``; it starts claiming jobs once the
    schema is current."""
    worker = EmbeddedWorker(settings)
    worker.start()
    return worker
