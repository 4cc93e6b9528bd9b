"""The in-process worker of ``mixedfit serve``: the worker loop on a background thread."""

from __future__ import annotations

import threading

from service.db.session import create_db_engine, make_session_factory
from service.jobs.worker import Worker
from service.settings import Settings


class EmbeddedWorker:
    def __init__(self, settings: Settings) -> None:
        self._engine = create_db_engine(settings.database_url)
        self.worker = Worker(settings, make_session_factory(self._engine))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.worker.run_forever, args=(self._stop,),
                                        name="mixedfit-worker", daemon=True)

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
    """Start a worker thread on ``settings.database_url`` (already migrated)."""
    worker = EmbeddedWorker(settings)
    worker.start()
    return worker
