"""Shared fixtures: a real, freshly migrated database per test, on SQLite and PostgreSQL.

``database_url`` runs each test that uses it twice: on a new SQLite file and, when
``MIXEDFIT_TEST_POSTGRES_URL`` names a server (for example
``postgresql://postgres@127.0.0.1:5432/mixedfit_test``), on a new PostgreSQL database
created from a template migrated once per session. Unset: the PostgreSQL case is skipped.
Set but unreachable: the tests fail.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from service.db.migrate import upgrade
from service.db.session import create_db_engine, make_session_factory, normalize_url

POSTGRES_ENV = "MIXEDFIT_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


class _PostgresServer:
    """Creates and drops databases on the server named by MIXEDFIT_TEST_POSTGRES_URL."""

    def __init__(self, url: str) -> None:
        self.base: URL = make_url(normalize_url(url))
        # a prefix unique to this pytest run: several runs may share one server
        self.prefix = f"{self.base.database or 'mixedfit_test'}_{uuid.uuid4().hex[:8]}"
        self.admin = self._connect_admin()
        self.template = f"{self.prefix}_template"

    def _connect_admin(self) -> Engine:
        errors = []
        # the named database may not exist yet; the maintenance database always does
        for database in (self.base.database, "postgres"):
            engine = create_engine(self.base.set(database=database), isolation_level="AUTOCOMMIT")
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                return engine
            except Exception as error:  # reported together below
                errors.append(f"{database}: {error}")
                engine.dispose()
        pytest.fail(f"{POSTGRES_ENV} is set but PostgreSQL cannot be reached: {errors}")

    def url(self, database: str) -> str:
        return self.base.set(database=database).render_as_string(hide_password=False)

    def create(self, database: str, template: str | None = None) -> str:
        clause = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"{clause}'))
        return self.url(database)

    def drop(self, database: str) -> None:
        with self.admin.connect() as connection:
            # FORCE: a test's leftover worker process must not keep the database alive
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def _postgres() -> Iterator[_PostgresServer]:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    server = _PostgresServer(url)
    upgrade(server.create(server.template))
    try:
        yield server
    finally:
        server.drop(server.template)
        server.admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new database at the newest schema revision."""
    if request.param == "sqlite":
        path = tmp_path / "mixedfit.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server: _PostgresServer = request.getfixturevalue("_postgres")
    name = f"{server.prefix}_{uuid.uuid4().hex[:8]}"
    url = server.create(name, template=server.template)
    try:
        yield url
    finally:
        server.drop(name)


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new database with no tables at all (not migrated)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: _PostgresServer = request.getfixturevalue("_postgres")
    name = f"{server.prefix}_{uuid.uuid4().hex[:8]}"
    url = server.create(name)
    try:
        yield url
    finally:
        server.drop(name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)
