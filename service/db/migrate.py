"""Alembic migrations, run from inside the installed package (no alembic.ini needed).

``mixedfit migrate`` calls :func:`upgrade`; ``/readyz`` calls :func:`is_at_head`; the API
and the workers ask a :class:`SchemaGate` whether the schema is there before using it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

import migrations
from service.db.session import create_db_engine

# The Alembic environment is the top-level ``migrations`` package (installed with service,
# so ``mixedfit migrate`` works from a wheel)
MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config whose scripts live in the package; ``engine`` is what env.py uses."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema revision."""
    engine = create_db_engine(url)
    try:
        command.upgrade(alembic_config(engine), "head")
    finally:
        engine.dispose()


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


# Alembic's default version table, which env.py keeps
VERSION_TABLE = "alembic_version"


def current_revisions(engine: Engine) -> set[str]:
    """The revisions the database is at (none when it was never migrated).

    Read from Alembic's version table directly: a ``MigrationContext`` logs two INFO lines
    each time, and the API and idle workers ask every few seconds while they wait for
    ``mixedfit migrate``.
    """
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return set()
        rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
        return {str(row[0]) for row in rows}


def is_at_head(engine: Engine) -> bool:
    """Whether the database behind ``engine`` has every migration applied."""
    return current_revisions(engine) == head_revisions()


def schema_problem(engine: Engine) -> str | None:
    """What is wrong with the database's schema for this release, as a sentence that says
    what to do; None when every migration is applied. Raises when the database cannot be
    reached."""
    current = current_revisions(engine)
    heads = head_revisions()
    if current == heads:
        return None
    where = f"The database {display_url(engine)}"
    if not current:
        return (f"{where} has no mixedfit schema (it was never migrated): run `mixedfit "
                "migrate` with the same MIXEDFIT_DATABASE_URL.")
    script = ScriptDirectory.from_config(alembic_config())
    known = {revision.revision for revision in script.walk_revisions()}
    shown = ", ".join(sorted(current))
    if current - known:
        return (f"{where} is at schema revision {shown}, which this release does not know "
                "(a newer release migrated it): run that release, or a database migrated "
                "by this one.")
    return (f"{where} is at schema revision {shown}, older than this release's "
            f"{', '.join(sorted(heads))}: run `mixedfit migrate` with the same "
            "MIXEDFIT_DATABASE_URL.")


def display_url(engine: Engine) -> str:
    """The engine's URL without its password, for messages."""
    return make_url(str(engine.url)).render_as_string(hide_password=True)


class SchemaGate:
    """Whether the database's schema is current, remembered once it is.

    Until it is, :meth:`problem` checks again at most every ``recheck_seconds`` (so an
    unmigrated database costs one query per interval, not one per request), and a
    database that cannot be reached is not this gate's to report: its answer is None
    and the caller's own database error handling speaks.
    """

    def __init__(self, engine: Engine, recheck_seconds: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._engine = engine
        self._recheck = recheck_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._current = False
        self._checked_at: float | None = None
        self._problem: str | None = None

    @property
    def current(self) -> bool:
        """True once the schema was found current (no database access)."""
        return self._current

    def problem(self) -> str | None:
        """Why the schema cannot be used (``schema_problem``), or None."""
        if self._current:
            return None
        with self._lock:
            now = self._clock()
            if self._current or (self._checked_at is not None
                                 and now - self._checked_at < self._recheck):
                return self._problem
            self._checked_at = now
            try:
                self._problem = schema_problem(self._engine)
            except Exception:  # unreachable: the request or the worker reports that itself
                self._problem = None
                return None
            self._current = self._problem is None
            return self._problem
