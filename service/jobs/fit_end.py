"""A succeeded fit's end: its job completed (if this worker still holds it) and its result
stored (unless the model is gone or has one), in the caller's transaction.

On PostgreSQL that is one statement, whose data-modifying parts (``WITH ... UPDATE/INSERT``)
each see whether the one before wrote anything: the job's UPDATE, the model's UPDATE only if
that one ended the job, the result rows only if the model's was written. It had been five
round trips (the job, the model, and one ``executemany`` per result table, each with its own
pipeline sync): 5-7 ms of a small fit's time in production, one statement 1-2 ms. SQLite
has no data-modifying ``WITH``, and its statements run in-process in microseconds: there
the same two steps run one after the other.

Both keep what the two steps promise: nothing is written unless this worker still holds the
job (an expired lease nobody took over still counts); a model that has a result keeps it
(its row is locked by the UPDATE, so a second writer waits and then finds it succeeded); the
result tables' primary keys are the last line of defence.
"""

from __future__ import annotations

from functools import cache
from typing import Any, cast

from sqlalchemy import Table, TextClause, bindparam, text
from sqlalchemy.orm import Session
from sqlalchemy.types import JSON

from service.db.models import FixedEffectRow, JobRow, ModelMetricRow, ModelRow, VarianceComponentRow
from service.jobs import repository as jobs
from service.models import repository as models
from service.stats.fit import FittedModel


def end_succeeded_fit(session: Session, job_id: str, worker_id: str, model_id: str,
                      fitted: FittedModel) -> tuple[bool, bool]:
    """(held, stored): whether ``worker_id`` still held the job, which is then succeeded
    (else nothing is written), and whether the result was stored (False: the model is gone
    or has a result already; its job is succeeded all the same)."""
    if session.get_bind().dialect.name != "postgresql":
        if not jobs.complete_if_held(session, job_id, worker_id):
            return False, False
        return True, models.store_fit_result(session, model_id, fitted)
    values = models.stored_result_values(model_id, fitted)
    fixed, variances, metrics = models.result_rows(model_id, fitted.result)
    held, stored = session.execute(_one_statement(), {
        **values, "job_id": job_id, "worker_id": worker_id,
        "fixed": fixed, "variances": variances, "metrics": metrics}).one()
    return bool(held), bool(stored)


def _rows_of(name: str, table: Table) -> str:
    """Insert the rows of JSON parameter ``name`` into ``table``, once the model's UPDATE
    (``model``) has written: its columns named, so the order of neither side matters."""
    columns = ", ".join(c.name for c in table.columns)
    return (f"{name} AS (INSERT INTO {table.name} ({columns}) SELECT {columns} "
            f"FROM json_populate_recordset(NULL::{table.name}, :{name}) "
            "WHERE EXISTS (SELECT 1 FROM model))")


@cache
def _one_statement() -> TextClause:
    job, model = cast(Table, JobRow.__table__), cast(Table, ModelRow.__table__)
    rows = ",\n".join(_rows_of(name, cast(Table, row.__table__)) for name, row in (
        ("fixed", FixedEffectRow), ("variances", VarianceComponentRow),
        ("metrics", ModelMetricRow)))
    # the job as jobs.complete_if_held ends it; the model as models.store_fit_result stores
    # it (the column types: the same JSON serializer writes the documents)
    sql = f"""WITH job AS (
    UPDATE {job.name} SET status = 'succeeded', lease_owner = NULL, lease_expires_at = NULL,
        last_error = NULL, finished_at = :now
    WHERE id = :job_id AND status = 'running' AND lease_owner = :worker_id
    RETURNING id),
model AS (
    UPDATE {model.name} SET result = :new_result, prediction_state = :new_prediction_state,
        conditional_modes = :new_conditional_modes, status = 'succeeded', error = NULL,
        finished_at = :now
    WHERE id = :model_id AND status <> 'succeeded' AND EXISTS (SELECT 1 FROM job)
    RETURNING id),
{rows}
SELECT (SELECT count(*) FROM job) AS held, (SELECT count(*) FROM model) AS stored"""
    documents: dict[str, Any] = {
        "new_result": ModelRow.result.type, "new_prediction_state": ModelRow.prediction_state.type,
        "new_conditional_modes": ModelRow.conditional_modes.type}
    return text(sql).bindparams(
        *(bindparam(name, type_=kind) for name, kind in documents.items()),
        *(bindparam(name, type_=JSON()) for name in ("fixed", "variances", "metrics")),
        bindparam("now", type_=job.c.finished_at.type))
