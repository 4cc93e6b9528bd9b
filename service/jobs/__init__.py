"""Jobs: the queue (``repository``), the worker loop and the fit runner.

``start_embedded_worker`` runs the worker on a thread of ``mixedfit serve``;
``run_worker_process`` is ``mixedfit worker`` (and ``python -m service.jobs.worker``).
"""

from service.jobs.embedded import EmbeddedWorker, start_embedded_worker
from service.jobs.worker import Worker, run_worker_process

__all__ = ["EmbeddedWorker", "Worker", "run_worker_process", "start_embedded_worker"]
