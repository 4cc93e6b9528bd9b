"""PostgreSQL LISTEN: wake a waiting loop as soon as the database says something happened.

The triggers of migration 0009 notify ``mixedfit_jobs`` when a job is queued (workers wake
and claim it at once) and ``mixedfit_finished`` when a fit has finished (the API's long
polls are answered at once). A ``Listener`` is a thread with its own autocommit connection
that calls ``on_notify(channel, payload)`` for each notification (``mixedfit_finished``'s
payload is the model's id, so its waiters are woken without a query). Polling stays as the
fallback: a notification lost while the connection is down is covered by the next poll,
and after each (re)connection ``on_notify(channel, None)`` is called once for every
channel, since whatever happened meanwhile was not heard. SQLite has no notifications:
``start_listener`` then returns None and the callers poll (embedded mode also wakes in
process).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from service.db.session import is_sqlite, normalize_url

log = logging.getLogger("service.db.notify")

JOBS = "mixedfit_jobs"
FINISHED = "mixedfit_finished"
# how often the thread looks up from waiting to see whether it must stop (a stop waits for
# at most this: an app's shutdown must not linger)
STOP_CHECK_SECONDS = 0.1
RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)
# called with a notification's channel and payload (None: anything may have happened)
OnNotify = Callable[[str, str | None], None]
# a listening connection only reads: without TCP keepalives one whose peer vanished (a
# database host gone, a dropped NAT entry) would look connected for hours, hearing nothing;
# with them it fails within about 20 s and is reopened (and polled for meanwhile)
KEEPALIVES: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 10,
                              "keepalives_interval": 3, "keepalives_count": 3}


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as psycopg's own connection string."""
    parsed = make_url(normalize_url(url)).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


class Listener:
    def __init__(self, url: str, channels: Sequence[str],
                 on_notify: OnNotify) -> None:
        self._url = libpq_url(url)
        self._channels = tuple(channels)
        self._on_notify = on_notify
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mixedfit-listen", daemon=True)
        self.connected = threading.Event()

    def start(self) -> Listener:
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=10,
                                     **KEEPALIVES) as conn:
                    for channel in self._channels:
                        conn.execute(f'LISTEN "{channel}"')
                    self.connected.set()
                    if failures:
                        log.info("listening to PostgreSQL notifications again")
                    failures = 0
                    for channel in self._channels:  # what happened while not listening
                        self._on_notify(channel, None)
                    while not self._stop.is_set():
                        for notification in conn.notifies(timeout=STOP_CHECK_SECONDS):
                            self._on_notify(notification.channel, notification.payload or None)
            except Exception as error:  # the database away: poll meanwhile, reconnect
                self.connected.clear()
                if failures == 0:
                    log.warning("PostgreSQL notifications unavailable (%s); polling until "
                                "they are back", type(error).__name__)
                pause = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                failures += 1
                self._stop.wait(pause)


def start_listener(url: str, channels: Sequence[str],
                   on_notify: OnNotify) -> Listener | None:
    """A started ``Listener`` on a PostgreSQL database; None on SQLite."""
    if is_sqlite(url):
        return None
    return Listener(url, channels, on_notify).start()
