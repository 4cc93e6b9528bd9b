"""Migration 0012 (the registry) on models stored before it: a valid registry name becomes
versions 1, 2 ... per tenant in creation order; any other name stays a free-text label with
no version; the next model of a registered name continues the count; down and up again.
On SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, select, text

from service.db.migrate import alembic_config
from service.db.models import ModelRow
from service.db.session import create_db_engine, make_session_factory
from service.registry import service as registry

BEFORE = [("a", None, "mood", 1), ("b", None, "my first fit", 2), ("c", "t1", "mood", 3),
          ("d", None, "mood", 4), ("e", None, None, 5)]


def test_existing_names_are_registered_or_kept_as_labels(empty_database_url: str) -> None:
    engine = create_db_engine(empty_database_url)
    try:
        command.upgrade(alembic_config(engine), "0011")
        with engine.begin() as connection:
            for model_id, tenant, name, minute in BEFORE:
                connection.execute(text(
                    "INSERT INTO models (id, tenant, name, dataset_id, formula, method, kind, "
                    "status, created_at) VALUES (:id, :tenant, :name, 'd', 'y ~ x', 'REML', "
                    "'lm', 'succeeded', :created)"),
                    {"id": model_id, "tenant": tenant, "name": name,
                     "created": f"2026-01-01 10:{minute:02d}:00"})
        command.upgrade(alembic_config(engine), "0012")
        with make_session_factory(engine)() as session:
            # these columns only: later revisions add others that the ORM row maps
            rows = {r.id: (r.name, r.version, r.tags_revision) for r in session.execute(
                select(ModelRow.id, ModelRow.name, ModelRow.version, ModelRow.tags_revision))}
            assert rows == {"a": ("mood", 1, 0), "b": ("my first fit", None, 0),
                            "c": ("mood", 1, 0), "d": ("mood", 2, 0), "e": (None, None, 0)}
            assert registry.version_model_id(session, "mood", 2) == "d"
            assert registry.register_version(session, "mood")[1] == 3
            session.rollback()
        command.downgrade(alembic_config(engine), "0011")
        assert "registered_models" not in inspect(engine).get_table_names()
        command.upgrade(alembic_config(engine), "head")
    finally:
        engine.dispose()
