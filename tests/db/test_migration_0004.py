"""Migration 0004 (api_keys, tenants) on a database holding earlier rows: they were made in
open mode, so their tenant is NULL (what admin keys see); the migration goes down and up
again. On SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from service.db.migrate import alembic_config
from service.db.session import create_db_engine

TENANTED = ("datasets", "models", "comparisons", "jobs")


def test_rows_from_before_tenants_belong_to_none(empty_database_url: str) -> None:
    engine = create_db_engine(empty_database_url)
    try:
        command.upgrade(alembic_config(engine), "0003")
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO models (id, dataset_id, formula, method, kind, status, "
                "created_at) VALUES ('m', 'd', 'y ~ x', 'REML', 'lm', 'queued', "
                "CURRENT_TIMESTAMP)"))
            connection.execute(text(
                "INSERT INTO jobs (id, kind, target_id, status, attempts, max_attempts, "
                "created_at) VALUES ('j', 'fit', 'm', 'queued', 0, 3, CURRENT_TIMESTAMP)"))
        command.upgrade(alembic_config(engine), "0004")
        schema = inspect(engine)
        assert "api_keys" in schema.get_table_names()
        for table in TENANTED:
            assert "tenant" in {c["name"] for c in schema.get_columns(table)}, table
            assert f"ix_{table}_tenant" in {i["name"] for i in schema.get_indexes(table)}
        with engine.connect() as connection:
            assert connection.execute(text("SELECT tenant FROM models")).all() == [(None,)]
            assert connection.execute(text("SELECT tenant FROM jobs")).all() == [(None,)]
        command.downgrade(alembic_config(engine), "0003")
        schema = inspect(engine)
        assert "api_keys" not in schema.get_table_names()
        assert all("tenant" not in {c["name"] for c in schema.get_columns(table)}
                   for table in TENANTED)
        command.upgrade(alembic_config(engine), "head")
    finally:
        engine.dispose()
