"""Disk space held back so that, when the database's disk fills, deletes still work and the
space they free can be used again.

Found by experiment on a full tmpfs (``tests/api/test_storage_full.py`` does the same
through the API):

SQLite (WAL mode). Once the disk is full nothing can be written at all, a DELETE included:
every write appends to the WAL, and the WAL starts over from its beginning (reusing its
file, which needs no new space) only once a checkpoint has copied all of it into the
database file; that checkpoint needs room to grow the database file by the pages that are
new since the last one, and the disk has none. So the API keeps a *ballast* file,
``<database>-reserve`` (``MIXEDFIT_STORAGE_RESERVE_BYTES``, allocated, not sparse):

- the first write that finds the disk full truncates it to 0 bytes: the checkpoint can
  complete, the WAL starts over, and deletes (a few pages each) work;
- while it is empty ("spent"), every connection of every process caps the database at its
  size (``PRAGMA max_page_count``): a write that would grow the file fails with
  SQLITE_FULL before the freed room is gone, so the checkpoint never again needs space
  that is not there. Deleted datasets leave free pages inside the file, which uploads
  reuse at once; the file itself never shrinks (that would need a VACUUM, and twice the
  space);
- when the file system has twice the reserve free again (an operator freed space or grew
  the volume) the API allocates the ballast again, and the cap is lifted.

The ballast must cover what a checkpoint may still have to add to the database file when
the disk fills: up to SQLite's autocheckpoint (1000 pages, 4 MiB) plus the last
transaction, so the default 16 MiB covers datasets of up to about 12 MiB stored.

PostgreSQL. A DELETE works on a full disk (it marks rows in place; its WAL is in the data
directory), but the space it frees is reused only after a VACUUM, and a VACUUM on a full
disk fails when it must create or extend a table's visibility map or free space map
(a table never vacuumed before has neither). So after a dataset delete the API vacuums the
table at once; when that VACUUM finds no room, it deletes and vacuums the rows of
``storage_reserve`` (which truncates that table: its pages go back to the file system) and
vacuums again. The reserve is at most 2 MB of one-page rows (room for those maps, and for
the index pages the next uploads add; what the delete freed is reusable inside the table),
vacuumed after its first rows so that releasing it needs no new space, and filled again
when the API next starts (PostgreSQL does not tell a client how full its disk is, so the
API cannot know sooner that there is room).
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import time
from typing import Any

from sqlalchemy import Connection, Engine, event, inspect, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from service.db.storage import describe, is_storage_full

log = logging.getLogger("mixedfit.storage")

BALLAST_SUFFIX = "-reserve"
# how often a spent ballast is tried again (at a connection checkout, a stat and a statvfs)
RETRY_SECONDS = 5.0
# connection_record.info keys: whether the connection is capped, and its own maximum
CAPPED = "mixedfit_storage_capped"
MAX_PAGES = "mixedfit_storage_max_pages"

RESERVE_TABLE = "storage_reserve"
POSTGRES_PAGE_BYTES = 8192
# one row per page: the largest filler that fits a page with its row header
POSTGRES_ROW_BYTES = 8000
# What PostgreSQL's reserve is for: the pages a VACUUM of the datasets may have to add (its
# visibility and free space maps, a few per table); what a delete frees is then reusable
# inside the table, so more would only be taken from the disk. Far below the 4069 pages
# one page of the reserve's own free space map covers: releasing it never extends that map.
POSTGRES_MAX_ROWS = 256  # 2 MB
FIRST_ROWS = 8  # filled, then vacuumed (creating the maps while there is room), then the rest
BATCH_ROWS = 250
RESERVE_LOCK = 0x6D78_6673  # pg_try_advisory_lock key: one process fills at a time

# bytes of ballast to hold, per SQLite database, as the API set them (hold), to allocate
# again once the disk has room; a worker's or a CLI command's engine only keeps to the rules
_held: dict[str, int] = {}


def install(engine: Engine) -> None:
    """Make ``engine`` keep to the reserve's rules: on SQLite, a write on a full disk
    releases the ballast, and connections are capped while it is spent."""
    path = ballast_path(engine)
    if path is None:
        return
    ballast = Ballast(path)
    event.listen(engine, "handle_error", ballast.on_error)
    event.listen(engine, "checkout", ballast.on_checkout)


def hold(engine: Engine, size: int) -> None:
    """Hold ``size`` bytes in reserve for the database of ``engine`` (0: none).

    Called when the API starts; never raises (a database without room for its reserve
    still serves, and says so in the log).
    """
    path = ballast_path(engine)
    try:
        if path is not None:
            _hold_ballast(path, size)
        elif engine.dialect.name == "postgresql":
            fill_postgres_reserve(engine, size)
    except Exception as error:
        log.warning("the storage reserve of %s could not be set up (%s)",
                    engine.url.render_as_string(hide_password=True), describe(error))


def reclaim_after_commit(session: Session, table: str) -> None:
    """Once ``session`` commits its deletes from ``table``, make their space reusable now.

    SQLite reuses a deleted row's pages at once; PostgreSQL only after a VACUUM, which
    autovacuum may run minutes later, or, on a full disk, never.
    """
    engine = session.get_bind()
    if not isinstance(engine, Engine) or engine.dialect.name != "postgresql":
        return
    event.listen(session, "after_commit", lambda _session: vacuum_freed(engine, table),
                 once=True)


def ballast_path(engine: Engine) -> str | None:
    """The ballast file of a SQLite file database; None for other databases."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database) + BALLAST_SUFFIX


class Ballast:
    """The SQLite ballast file: absent (no reserve), allocated (held) or empty (spent)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._tried_at = 0.0

    def size(self) -> int | None:
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return None

    def release(self) -> bool:
        """Give the ballast's space back (True if there was some to give)."""
        if not self.size():
            return False
        os.truncate(self.path, 0)  # kept, empty: the mark that the reserve is spent
        return True

    def make(self, size: int) -> bool:
        """Allocate the ballast to ``size`` bytes if that leaves as much free (True when it
        holds ``size``). Leaving room matters: a ballast that filled the disk would be
        released by the next write, and the database capped at once."""
        current = self.size() or 0
        if current >= size:
            if current > size:
                os.truncate(self.path, size)
            return True
        usage = os.statvfs(os.path.dirname(self.path))
        if usage.f_bavail * usage.f_frsize < 2 * size - current:
            return False
        try:
            with open(self.path, "ab") as file:
                # allocated, not sparse: a sparse file would hold no space to give back
                os.posix_fallocate(file.fileno(), 0, size)
        except OSError:
            os.truncate(self.path, current)
            return False
        return True

    def on_error(self, context: ExceptionContext) -> None:
        if is_storage_full(context.original_exception) and self.release():
            log.warning("the disk of %s is full (%s): released the storage reserve %s, so "
                        "that deletes work; the database grows no further until the disk "
                        "has room for the reserve again", self.path.removesuffix(BALLAST_SUFFIX),
                        describe(context.original_exception), self.path)

    def on_checkout(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        size = self.size()
        if size == 0:
            size = self._retry()
        capped = size == 0
        if record.info.get(CAPPED, False) == capped:
            return
        try:
            _cap(dbapi_connection, record, capped)
        except sqlite3.Error as error:  # the next checkout tries again
            log.debug("max_page_count not set: %s", error)

    def _retry(self) -> int:
        """Allocate a spent ballast again when the disk has room (now and then)."""
        wanted = _held.get(self.path)
        now = time.monotonic()
        if not wanted or now - self._tried_at < RETRY_SECONDS:
            return 0
        self._tried_at = now
        if not self.make(wanted):
            return 0
        log.info("the storage reserve %s is held again; the database may grow", self.path)
        return wanted


def _cap(dbapi_connection: Any, record: Any, capped: bool) -> None:
    """Cap the connection's database at its present size, or lift the cap."""
    cursor = dbapi_connection.cursor()
    try:
        if MAX_PAGES not in record.info:
            record.info[MAX_PAGES] = int(cursor.execute("PRAGMA max_page_count").fetchone()[0])
        # max_page_count is never set below the present size: 1 means "as large as it is"
        limit = 1 if capped else record.info[MAX_PAGES]
        cursor.execute(f"PRAGMA max_page_count={int(limit)}").fetchone()
    finally:
        cursor.close()
    record.info[CAPPED] = capped


def _hold_ballast(path: str, size: int) -> None:
    ballast = Ballast(path)
    if size <= 0:
        _held.pop(path, None)
        if ballast.size() is not None:
            os.remove(path)  # no reserve wanted: an old, spent one must not cap the database
        return
    _held[path] = size
    existing = ballast.size()
    if ballast.make(size):
        return
    if existing is None:
        log.warning("the disk of %s has no room for the %d-byte storage reserve: when it "
                    "fills, deletes may fail too", path.removesuffix(BALLAST_SUFFIX), size)
    else:
        log.warning("the storage reserve %s is spent (the disk filled): the database grows "
                    "no further until the disk has %d bytes free", path, 2 * size)


def fill_postgres_reserve(engine: Engine, size: int) -> None:
    """Fill ``storage_reserve`` up to ``size`` bytes (at most ``POSTGRES_MAX_ROWS`` rows),
    as far as the disk has room; one process at a time."""
    wanted = min(math.ceil(size / POSTGRES_PAGE_BYTES), POSTGRES_MAX_ROWS) if size > 0 else 0
    with _autocommit(engine) as connection:
        if not inspect(connection).has_table(RESERVE_TABLE):
            return  # not migrated yet: the next start fills it
        if not connection.scalar(text("SELECT pg_try_advisory_lock(:key)"),
                                 {"key": RESERVE_LOCK}):
            return  # another process is filling it
        try:
            _fill(engine, connection, wanted)
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": RESERVE_LOCK})


def _fill(engine: Engine, connection: Connection, wanted: int) -> None:
    # counted in pages, not rows: a batch that found the disk full leaves the pages it got
    # (empty, its rows rolled back), and they are held all the same
    have = int(connection.scalar(
        text(f"SELECT pg_relation_size('{RESERVE_TABLE}') / {POSTGRES_PAGE_BYTES}")) or 0)
    next_id = int(connection.scalar(text(f"SELECT coalesce(max(id), 0) FROM {RESERVE_TABLE}"))
                  or 0) + 1
    insert = text(f"INSERT INTO {RESERVE_TABLE} (id, filler) VALUES (:id, :filler)")
    first = True
    while have < wanted:
        count = min(FIRST_ROWS if first else BATCH_ROWS, wanted - have)
        rows = [{"id": next_id + i, "filler": os.urandom(POSTGRES_ROW_BYTES)}
                for i in range(count)]
        try:
            with engine.begin() as batch:
                batch.execute(insert, rows)
            if first:
                # the visibility and free space maps, made now while there is room: the
                # VACUUM that releases the reserve on a full disk then needs no new pages
                _vacuum(connection, RESERVE_TABLE)
        except DBAPIError as error:
            if not is_storage_full(error):
                raise
            log.warning("the storage reserve holds less than the %d bytes asked for: the "
                        "disk has no room for more", wanted * POSTGRES_PAGE_BYTES)
            return
        have += count
        next_id += count
        first = False


def vacuum_freed(engine: Engine, table: str) -> None:
    """VACUUM ``table`` (PostgreSQL), spending the reserve when the disk has no room for
    it (the API fills it again when it next starts). Never raises: the delete is done
    either way."""
    try:
        with _autocommit(engine) as connection:
            try:
                _vacuum(connection, table)
            except DBAPIError as error:
                if not is_storage_full(error):
                    raise
                connection.execute(text(f"DELETE FROM {RESERVE_TABLE}"))
                # an emptied table is truncated by VACUUM: its pages go back to the disk
                _vacuum(connection, RESERVE_TABLE)
                log.warning("VACUUM %s found the disk full (%s): released the storage "
                            "reserve; the API fills it again when it next starts",
                            table, describe(error))
                _vacuum(connection, table)
    except Exception as error:
        log.warning("VACUUM %s after a delete failed (%s); autovacuum will free the space "
                    "later", table, describe(error))


def _autocommit(engine: Engine) -> Connection:
    # VACUUM cannot run inside a transaction block
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def _vacuum(connection: Connection, table: str) -> None:
    # INDEX_CLEANUP ON: when few pages have dead rows (a dataset or two among many), VACUUM
    # would otherwise skip the indexes, and then it also leaves those pages out of the free
    # space map, so the space they hold is not reused; it costs a scan of the indexes (on
    # the TOAST table one entry per 2 kB stored). Not SKIP_LOCKED: an autovacuum that holds
    # the lock may be failing on the full disk, or may have started before the delete; it
    # yields its lock to this VACUUM within a second (deadlock_timeout).
    connection.exec_driver_sql(f"VACUUM (INDEX_CLEANUP ON) {table}")
