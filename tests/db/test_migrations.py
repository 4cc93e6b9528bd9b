"""The Alembic migration builds the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from service.db.migrate import head_revisions, is_at_head, upgrade
from service.db.session import create_db_engine
from service.db.tables import Base


def test_migrated_database_has_every_table(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert {"datasets", "models", "jobs", "fixed_effects", "variance_components",
            "model_metrics", "alembic_version"} <= tables


def test_migration_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_migrated_database_is_at_head(engine: Engine) -> None:
    assert head_revisions()
    assert is_at_head(engine)


def test_upgrade_is_idempotent(database_url: str) -> None:
    upgrade(database_url)
    engine = create_db_engine(database_url)
    try:
        assert is_at_head(engine)
    finally:
        engine.dispose()


def test_an_empty_database_is_migrated_to_head(empty_database_url: str) -> None:
    engine = create_db_engine(empty_database_url)
    try:
        assert not is_at_head(engine)
        upgrade(empty_database_url)
        assert is_at_head(engine)
        assert "jobs" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
