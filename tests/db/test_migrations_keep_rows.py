"""Upgrading and downgrading keep every row of a stored model: on SQLite, batch migrations
rebuild ``models`` as a copy and drop the original, which with foreign keys enforced
deleted its coefficients, variance components and metrics (ON DELETE CASCADE); 0012 did.
On SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from service.db.migrate import alembic_config
from service.db.session import create_db_engine

CHILDREN = ("fixed_effects", "variance_components", "model_metrics")


def _counts(engine: object) -> dict[str, int]:
    with engine.connect() as connection:  # type: ignore[attr-defined]
        return {table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("models", *CHILDREN)}


def test_a_stored_model_keeps_its_rows_through_every_migration(
        empty_database_url: str) -> None:
    engine = create_db_engine(empty_database_url)
    try:
        command.upgrade(alembic_config(engine), "0010")
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO models (id, name, dataset_id, formula, method, kind, status, "
                "created_at) VALUES ('m', 'mood', 'd', 'y ~ x + (1 | g)', 'REML', 'lmm', "
                "'succeeded', CURRENT_TIMESTAMP)"))
            connection.execute(text(
                "INSERT INTO fixed_effects (model_id, position, term, estimate) "
                "VALUES ('m', 0, '(Intercept)', 1.5)"))
            connection.execute(text(
                "INSERT INTO variance_components (model_id, position, group_name, term1, "
                "variance, std_dev) VALUES ('m', 0, 'g', '(Intercept)', 4.0, 2.0)"))
            connection.execute(text(
                "INSERT INTO model_metrics (model_id, name, value) VALUES ('m', 'AIC', 10)"))
        want = _counts(engine)
        command.upgrade(alembic_config(engine), "head")
        assert _counts(engine) == want
        command.downgrade(alembic_config(engine), "0010")
        assert _counts(engine) == want
        command.upgrade(alembic_config(engine), "head")
        assert _counts(engine) == want
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":  # enforced again after migrating
                assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    finally:
        engine.dispose()
