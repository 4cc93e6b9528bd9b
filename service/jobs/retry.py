"""Retrying a worker's unit of work while the database is unavailable (restart, failover).

A worker that holds a job keeps what it has (the job's data, a finished fit) and waits for
the database to come back rather than dropping it: a fit thrown away because its result could
not be written would be fitted again, and cost an attempt. Every unit retried here is
idempotent: it checks, with the job row locked, that this worker still holds the job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from service.db.session import is_database_unavailable
from service.jobs.wake import pause

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_WAIT_SECONDS = 0.5
MAX_WAIT_SECONDS = 5.0


def while_unavailable(action: Callable[[], T], what: str, stop: threading.Event) -> T:
    """Run ``action`` until it gets through to the database, waiting longer each time.

    Errors other than an unavailable database propagate at once. When ``stop`` is set
    during an outage the last error propagates: the job's lease then runs out and another
    worker (or this one, restarted) claims the job again.
    """
    wait = FIRST_WAIT_SECONDS
    failures = 0
    while True:
        try:
            result = action()
        except Exception as error:
            if not is_database_unavailable(error) or stop.is_set():
                raise
            failures += 1
            if failures == 1:
                log.warning("cannot %s, the database is unavailable (%s); retrying",
                            what, describe(error))
            pause(stop, wait)  # a queued job's nudge is kept for the idle wait
            wait = min(wait * 2, MAX_WAIT_SECONDS)
            continue
        if failures:
            log.info("%s: done after %d retries", what, failures)
        return result


def describe(error: BaseException) -> str:
    """The error's type and first line, for a one-line log message."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"
