"""Migration 0003 (models.pool, fixed_effects.aliased) on a database holding earlier rows:
a succeeded per-group model was fitted with each group's own standard errors, so it says
pool = false; one still queued will be fitted with lme4's default (true); other models have
no pool; existing coefficients are not aliased. On SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from service.db.migrate import alembic_config
from service.db.session import create_db_engine

MODELS = [("by-group-done", "lm_by_group", "succeeded"), ("by-group-queued", "lm_by_group",
                                                          "queued"), ("mixed", "lmm", "succeeded")]


def test_existing_rows_get_the_pool_they_were_fitted_with(empty_database_url: str) -> None:
    engine = create_db_engine(empty_database_url)
    try:
        command.upgrade(alembic_config(engine), "0002")
        with engine.begin() as connection:
            for model_id, kind, status in MODELS:
                connection.execute(text(
                    "INSERT INTO models (id, dataset_id, formula, method, kind, status, "
                    "created_at) VALUES (:id, 'd', 'y ~ x | g', 'REML', :kind, :status, "
                    "CURRENT_TIMESTAMP)"), {"id": model_id, "kind": kind, "status": status})
            connection.execute(text(
                "INSERT INTO fixed_effects (model_id, position, term, estimate) "
                "VALUES ('mixed', 0, '(Intercept)', 1.5)"))
        command.upgrade(alembic_config(engine), "head")
        with engine.connect() as connection:
            pools = dict(connection.execute(text("SELECT id, pool FROM models")).all())
            aliased = connection.execute(text("SELECT aliased FROM fixed_effects")).scalar_one()
        assert {k: (None if v is None else bool(v)) for k, v in pools.items()} == {
            "by-group-done": False, "by-group-queued": True, "mixed": None}
        assert not aliased
        command.downgrade(alembic_config(engine), "0002")
        command.upgrade(alembic_config(engine), "head")
    finally:
        engine.dispose()
