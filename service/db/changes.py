"""Whether the database may have changed since a moment, told without a query.

Caches of what rarely changes and must never be stale (the outcome of an API key lookup,
that a cached model still exists) keep an answer while the database's change token is the
one they saw when they last checked, and check again once it differs. So a request that
presents a key used a moment ago, or predicts from a cached model, needs no session, no
query and no thread while nothing was written, and a revocation or a delete in any process
is seen by the next request.

- SQLite: the count of such changes that migration 0016's triggers keep (API keys
  written, models or datasets deleted), read on a connection of its own whenever ``PRAGMA
  data_version`` says that another connection (of any process) has committed: exact, and
  microseconds; a fit stored or a dataset uploaded changes the file, not the count. (On a
  database before 0016, every commit counts.)
- PostgreSQL: a count of the notifications on ``mixedfit_changes`` (migration 0013's
  triggers: API keys written, models or datasets deleted), heard by this process's
  listener; while the listener is not connected nothing can be told (None: check every
  time). A notification arrives a millisecond or so after its commit, so a change made by
  another process is seen from the first request after it is heard, not the first after
  the commit: reading a counter on every request would be exact but costs a round trip
  (about 0.1 ms here) on the path this token exists to keep free of queries. What was
  read at a token is trusted for ``TRUST_SECONDS`` at most, so it is checked again that
  often even if a notification were lost on a connection that died silently.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Hashable

from sqlalchemy.engine import make_url

from service.db.session import is_sqlite

CHANNEL = "mixedfit_changes"
# the longest what was read is trusted on PostgreSQL while nothing is heard
TRUST_SECONDS = 5.0


# a change token and when it was read
Stamp = tuple[Hashable, float]


class ChangeToken:
    """No way to tell (an in-memory database): every token is None, so caches check."""

    # how long what was read at a token may be trusted while the token stays the same
    # (None: for as long as it does)
    trust_seconds: float | None = None

    def token(self) -> Hashable | None:
        return None

    def stamp(self) -> Stamp | None:
        """The token now, to keep with what is about to be read (None: nothing to keep)."""
        token = self.token()
        return None if token is None else (token, time.monotonic())

    def unchanged_since(self, stamp: Stamp | None) -> bool:
        """Whether what was read at ``stamp`` may be trusted without asking again."""
        if stamp is None:
            return False
        token = self.token()
        if token is None or token != stamp[0]:
            return False
        return self.trust_seconds is None or time.monotonic() - stamp[1] < self.trust_seconds

    def heard(self) -> None:
        """A notification of a change arrived (PostgreSQL's listener calls this)."""

    def close(self) -> None:
        return None


class SQLiteChanges(ChangeToken):
    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._version: int | None = None  # the file's data_version when last read
        self._token: Hashable | None = None  # the token read then

    def token(self) -> Hashable | None:
        with self._lock:
            try:
                if self._connection is None:
                    if not os.path.exists(self.path):
                        return None
                    # read-only and never creating the file; autocommit, so each statement
                    # sees the newest commit
                    self._connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                                       check_same_thread=False,
                                                       isolation_level=None)
                row = self._connection.execute("PRAGMA data_version").fetchone()
                if row is None:
                    return None
                version = int(row[0])
                if version != self._version:
                    # read after the version: a change committed in between is counted
                    # now, one committed later changes the version again
                    self._token = self._count(self._connection, version)
                    self._version = version
                return self._token
            except sqlite3.Error:
                return None

    @staticmethod
    def _count(connection: sqlite3.Connection, version: int) -> Hashable:
        try:
            row = connection.execute("SELECT changes FROM change_count WHERE id = 1").fetchone()
        except sqlite3.OperationalError:  # no such table: a schema before 0016
            row = None
        return ("file", version) if row is None else ("count", int(row[0]))

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class NotifiedChanges(ChangeToken):
    """PostgreSQL: ``heard`` counts notifications; ``connected`` is the listener's state."""

    trust_seconds = TRUST_SECONDS

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()
        self.connected: threading.Event | None = None

    def heard(self) -> None:
        with self._lock:
            self._count += 1

    def token(self) -> Hashable | None:
        if self.connected is None or not self.connected.is_set():
            return None
        return self._count


def change_token_for(url: str) -> ChangeToken:
    if is_sqlite(url):
        database = make_url(url).database
        if not database or database == ":memory:" or database.startswith("file:"):
            return ChangeToken()
        return SQLiteChanges(os.path.abspath(database))
    return NotifiedChanges()
