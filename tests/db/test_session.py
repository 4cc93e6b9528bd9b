"""Engine set-up: SQLite pragmas and immediate transactions, PostgreSQL through psycopg 3."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, exc, text

from service.db import session as session_module
from service.db.session import create_db_engine, make_session_factory, normalize_url


def test_postgres_urls_use_psycopg_3() -> None:
    assert normalize_url("postgresql://u:p@h:5432/db") == "postgresql+psycopg://u:p@h:5432/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert (connection.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) > 0
    finally:
        engine.dispose()


def test_sqlite_transactions_take_the_write_lock_at_begin(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
        with engine.connect() as first:
            first.execute(text("SELECT 1"))  # begins; with BEGIN IMMEDIATE, holds the lock
            other = create_db_engine(f"sqlite:///{tmp_path / 'x.db'}")
            try:
                raw = other.raw_connection()
                raw.execute("PRAGMA busy_timeout=0")
                try:
                    raw.execute("BEGIN IMMEDIATE")
                    locked = False
                except Exception as error:
                    locked = "locked" in str(error)
                finally:
                    raw.close()
            finally:
                other.dispose()
        assert locked
    finally:
        engine.dispose()


def test_the_test_database_is_reachable(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(url: str, pid: int) -> None:
    killer = create_db_engine(url)
    try:
        with killer.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        killer.dispose()


def test_a_dead_pooled_connection_is_replaced_once_idle_and_trusted_just_after_use(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: a pooled connection returned longer ago than the bypass window is
    tested at checkout and replaced if its server is gone; one returned a moment ago is
    handed out untested (the round trip saved), so its server's death fails that query
    once, and SQLAlchemy then replaces the connections pooled before."""
    if database_url.startswith("sqlite"):
        pytest.skip("pooled connections to a server are PostgreSQL's")
    monkeypatch.setattr(session_module, "PING_BYPASS_SECONDS", 0.2)
    engine = create_db_engine(database_url)
    try:
        first = _backend_pid(engine)
        _terminate(database_url, first)
        time.sleep(0.3)  # idle past the window: tested, found dead, replaced
        second = _backend_pid(engine)
        assert second != first
        _terminate(database_url, second)  # and used again at once: not tested
        with pytest.raises(exc.OperationalError):
            _backend_pid(engine)
        assert _backend_pid(engine) not in (first, second)  # the pool was renewed
    finally:
        engine.dispose()


def test_postgres_reads_run_outside_a_transaction_block_and_writes_inside_one(
        engine: Engine, database_url: str) -> None:
    """A read-only session on PostgreSQL sends no BEGIN (autocommit: each statement its
    own transaction, as READ COMMITTED reads anyway); a writing one keeps its block, so
    its statements commit together or not at all."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's read sessions are deferred transactions (test above)")
    probe = text("SELECT statement_timestamp() - now()")
    with make_session_factory(engine, reads_only=True)() as reads:
        reads.execute(text("SELECT 1"))
        time.sleep(0.05)
        elapsed = reads.execute(probe).scalar_one()
        # now() is the transaction's start: the statement's own start without a block
        assert elapsed.total_seconds() < 0.04
        assert reads.execute(text("SELECT pg_current_xact_id_if_assigned()")).scalar() is None
    with make_session_factory(engine)() as writes:
        writes.execute(text("SELECT 1"))
        time.sleep(0.05)
        elapsed = writes.execute(probe).scalar_one()
        assert elapsed.total_seconds() >= 0.05  # one block since the first statement
        writes.rollback()
