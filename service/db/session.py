"""Engines and sessions for SQLite (embedded mode) and PostgreSQL (production).

Services never commit: whoever opens the session (the request dependency, the job runner)
commits once, so a unit of work is one transaction.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.db import jsoncodec, reserve
from service.db.storage import is_storage_full

# How long a SQLite writer waits for another writer before giving up with "database is
# locked". Transactions here are short; fits run outside them.
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_POOL_SIZE = 48
# The execution option that marks a read-only engine (``make_session_factory(reads_only=True)``)
READS_ONLY = "mixedfit_reads_only"
# Seconds to wait for a PostgreSQL connection: without it an unreachable host blocks for the
# TCP timeout (minutes), and with it a worker's lease renewal or an API request in the middle
# of an outage fails over to its retry or its 503 soon.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 10
# a pooled PostgreSQL connection returned this recently is handed out untested
PING_BYPASS_SECONDS = 0.5
RETURNED_AT = "mixedfit_returned_at"


def normalize_url(url: str) -> str:
    """Return ``url`` with PostgreSQL URLs pointed at the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_db_engine(url: str) -> Engine:
    """Create an engine for ``url`` (``sqlite:///file.db`` or ``postgresql://...``)."""
    url = normalize_url(url)
    if is_sqlite(url):
        engine = _create_sqlite_engine(url)
    else:
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in make_url(url).query:
            connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_SECONDS
        engine = create_engine(url, connect_args=connect_args,
                               json_serializer=jsoncodec.dumps,
                               json_deserializer=jsoncodec.loads)
        ping_when_idle(engine, PING_BYPASS_SECONDS)
    # every engine (the API's, a worker's, a CLI command's) keeps to the storage reserve's
    # rules: on a full disk a write releases it, and a database whose reserve is spent grows
    # no further (service.db.reserve)
    reserve.install(engine)
    return engine


def ping_when_idle(engine: Engine, bypass_seconds: float) -> None:
    """Test a pooled connection at checkout, and replace it if dead, unless it was
    returned less than ``bypass_seconds`` ago (HikariCP's ``aliveBypassWindowMs``).

    Connections pooled before a database restart are dead: a checkout that tests its
    connection replaces a dead one instead of failing the first query. But the test is a
    round trip, and a small fit checks out four connections in as many milliseconds. A
    connection that answered a moment ago is handed out as it is; a restart within that
    moment fails one query, as any outage does (the worker retries it, the API says 503),
    and SQLAlchemy then replaces every connection pooled before it."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info[RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _test(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(RETURNED_AT)
        if returned is not None and time.monotonic() - returned < bypass_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)  # what pool_pre_ping sends
        except engine.dialect.loaded_dbapi.Error as error:
            # the pool discards this connection and checks out another (SQLAlchemy's
            # pessimistic disconnect handling)
            raise exc.DisconnectionError(f"a pooled connection is dead: {error}") from error


def is_database_unavailable(error: BaseException) -> bool:
    """True when ``error`` says the database cannot be reached now, so retrying later helps.

    Connection failures (refused, closed by a restart, timed out) are ``OperationalError``
    or ``InterfaceError``, or a ``DBAPIError`` that invalidated its connection; a full
    connection pool is ``TimeoutError``. Constraint violations and SQL errors are not, and
    neither is a full disk (``service.db.storage``), which is an ``OperationalError`` too but
    is not cured by waiting: it is answered 507.
    """
    if is_storage_full(error):
        return False
    if isinstance(error, (exc.OperationalError, exc.InterfaceError, exc.TimeoutError)):
        return True
    return isinstance(error, exc.DBAPIError) and error.connection_invalidated


def make_session_factory(engine: Engine, *, reads_only: bool = False) -> sessionmaker[Session]:
    """Sessions on ``engine``; one scoped to a caller (``service.db.tenancy.scope_session``)
    sees that caller's tenant's rows only.

    ``reads_only``: sessions for units of work that only read (GET requests, key lookups).
    On SQLite their transactions are deferred and never take the write lock, so a reader
    never waits for a writer nor holds one up (WAL gives it a snapshot). On PostgreSQL
    they run without a transaction block (autocommit): at READ COMMITTED each statement
    sees what was committed before it began, inside a block or not, so a reader sees the
    same rows, and saves the ``BEGIN`` and the ``ROLLBACK`` around them (two of a small
    read's three round trips) and never sits idle in a transaction.
    """
    from service.db.tenancy import install_tenancy

    options: dict[str, Any] = {READS_ONLY: True} if reads_only else {}
    if reads_only and engine.dialect.name == "postgresql":
        options["isolation_level"] = "AUTOCOMMIT"
    bind = engine.execution_options(**options) if options else engine
    # expire_on_commit=False: rows read in a unit of work stay usable after its commit
    # (the endpoint renders them, the worker passes them on).
    return install_tenancy(sessionmaker(bind=bind, expire_on_commit=False))


def end_reads(session: Session) -> None:
    """End the session's transaction before work that does not need the database.

    What a unit of work computes from its reads (a prediction, a plot) must not hold a
    transaction (a pooled connection; on PostgreSQL an idle-in-transaction backend) while
    it computes. Rows read so far stay usable (``expire_on_commit=False``); a later query
    opens a new transaction. Only for a unit of work that has written nothing yet.
    """
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("end_reads on a session with pending writes")
    session.commit()


def _create_sqlite_engine(url: str) -> Engine:
    # as many connections as request threads (anyio's 40) and more: a request thread that
    # waits for a pooled connection while every connection's holder waits for a thread
    # would stall the API; SQLite connections cost a file handle each
    engine = create_engine(url, connect_args={"check_same_thread": False},
                           pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE,
                           json_serializer=jsoncodec.dumps, json_deserializer=jsoncodec.loads)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below: pysqlite would
        # otherwise issue a deferred BEGIN lazily before the first write.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A unit of work that may write takes the write lock up front. A deferred
        # transaction that reads and then writes fails at once with SQLITE_BUSY
        # (busy_timeout does not help) when another connection wrote in between; IMMEDIATE
        # makes writers queue instead, and it is what makes the job claim atomic on SQLite.
        # A read-only unit of work begins deferred: in WAL mode it reads a snapshot, never
        # waits for the write lock and never holds it, so a slow reader stalls nobody.
        if connection.get_execution_options().get(READS_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
