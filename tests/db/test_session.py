"""Engine set-up: SQLite pragmas and immediate transactions, PostgreSQL through psycopg 3."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

from service.db.session import create_db_engine, normalize_url


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
