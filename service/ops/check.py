"""``mixedfit worker --check``: the worker container's health check.

Healthy when the database the worker uses answers and has this release's schema, the two
things a worker needs to claim jobs (the worker process itself is the container's main
process: if it dies the container stops, and its restart policy acts).
"""

from __future__ import annotations

from service.db.migrate import display_url, schema_problem
from service.db.session import create_db_engine
from service.settings import Settings


def check_worker_database(settings: Settings) -> tuple[bool, str]:
    """Whether a worker with these settings can work, and a line that says why (not)."""
    engine = create_db_engine(settings.database_url)
    try:
        try:
            problem = schema_problem(engine)
        except Exception as error:
            return False, (f"the database {display_url(engine)} cannot be reached "
                           f"({type(error).__name__})")
        if problem is not None:
            return False, problem
        return True, f"the database {display_url(engine)} answers and its schema is current"
    finally:
        engine.dispose()
