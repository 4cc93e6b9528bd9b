"""Whether a database error says that the database's storage is full.

A full disk is not an outage: reads and deletes still work (``service.db.reserve`` sees to
the deletes), so the API answers a refused write with 507 and no Retry-After instead of the
503 of an unreachable database, and a worker does not wait for it as for a restart.

What the databases really say on a full disk (checked on a full tmpfs):

- SQLite: ``SQLITE_FULL`` (13, "database or disk is full") when a write to the database or
  its WAL finds no room: the unix VFS turns ENOSPC from write() into SQLITE_FULL itself. It
  is also what ``PRAGMA max_page_count`` refuses growth with (the cap of ``reserve``). The
  one ENOSPC it reports otherwise is ``SQLITE_IOERR_SHMSIZE`` (4874, "disk I/O error"):
  the ``-shm`` file of the WAL cannot be created or grown, which on a full disk makes every
  statement of a new connection fail, reads too.
- PostgreSQL: SQLSTATE 53100 ``disk_full`` ("could not extend file ...: No space left on
  device"; psycopg's ``errors.DiskFull``), for tables, indexes and temporary files alike.
  The rest of class 53 (insufficient resources) is not storage: out of memory (53200),
  too many connections (53300) and configuration limits (53400) pass, so retrying later
  helps, and stay "unavailable".
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc

SQLITE_FULL = 13
SQLITE_IOERR_SHMSIZE = 4874  # SQLITE_IOERR | (19 << 8)
POSTGRES_DISK_FULL = "53100"


def is_storage_full(error: BaseException) -> bool:
    """True when ``error`` (a SQLAlchemy error or the driver's own) says the database's
    storage is full, on SQLite or PostgreSQL."""
    driver_error = error.orig if isinstance(error, exc.DBAPIError) else error
    if isinstance(driver_error, sqlite3.Error):
        code = getattr(driver_error, "sqlite_errorcode", None)
        if not isinstance(code, int):
            return False
        # the primary code is the low byte; SQLITE_FULL has no extended codes
        return code & 0xFF == SQLITE_FULL or code == SQLITE_IOERR_SHMSIZE
    return getattr(driver_error, "sqlstate", None) == POSTGRES_DISK_FULL


def describe(error: BaseException) -> str:
    """The driver's error type and its first line, for a one-line log message.

    Never ``str()`` of a SQLAlchemy error: that repeats the statement and its parameters,
    here the bytes of the upload that did not fit.
    """
    driver_error = error.orig if isinstance(error, exc.DBAPIError) else error
    text = str(driver_error).strip()
    return f"{type(driver_error).__name__}: {text.splitlines()[0] if text else ''}"
