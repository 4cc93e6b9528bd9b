"""Alembic environment: runs migrations on the engine handed over by service.db.migrate.

Used directly by the ``alembic`` command (with migrations/alembic.ini) it falls back to
``MIXEDFIT_DATABASE_URL``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, Engine

from service.db.session import create_db_engine
from service.db.tables import Base


def _engine() -> tuple[Engine, bool]:
    engine = context.config.attributes.get("engine")
    if isinstance(engine, Engine):
        return engine, False
    from service.settings import get_settings

    return create_db_engine(get_settings().database_url), True


def _foreign_keys(connection: Connection, *, on: bool) -> None:
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def _check_foreign_keys(connection: Connection) -> None:
    """Refuse (and so roll back) a migration that left a row referring to nothing."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise RuntimeError(f"the migration left {len(broken)} rows whose foreign keys refer "
                           f"to no row, e.g. {tuple(broken[0])}")


def run_migrations() -> None:
    engine, owned = _engine()
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # batch mode rebuilds a table as a copy, then drops the original: with
                # foreign keys enforced, that DROP deletes every row that refers to it (ON
                # DELETE CASCADE: a model's coefficients, variance components, metrics).
                # SQLite's own advice for schema changes: keys off, then checked after.
                # On the driver's connection, before SQLAlchemy begins (this engine's
                # BEGIN is explicit): inside a transaction the pragma does nothing.
                _foreign_keys(connection, on=False)
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                # SQLite cannot ALTER most things: batch mode rebuilds the table instead
                render_as_batch=sqlite,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    _check_foreign_keys(connection)
            connection.commit()
            if sqlite:
                _foreign_keys(connection, on=True)
    finally:
        if owned:
            engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations()
