"""Alembic environment: runs migrations on the engine handed over by service.db.migrate.

Used directly by the ``alembic`` command (with migrations/alembic.ini) it falls back to
``MIXEDFIT_DATABASE_URL``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from service.db.models import Base
from service.db.session import create_db_engine


def _engine() -> tuple[Engine, bool]:
    engine = context.config.attributes.get("engine")
    if isinstance(engine, Engine):
        return engine, False
    from service.settings import get_settings

    return create_db_engine(get_settings().database_url), True


def run_migrations() -> None:
    engine, owned = _engine()
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                # SQLite cannot ALTER most things: batch mode rebuilds the table instead
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        if owned:
            engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations()
