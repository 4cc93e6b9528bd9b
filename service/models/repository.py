"""SQL for models and their results.

A finished fit is written as the API's result document (``models.result``), the state that
predictions need (``models.prediction_state``) and rows of ``fixed_effects``,
``variance_components`` and ``model_metrics`` that SQL can query.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection
from dataclasses import asdict, is_dataclass, replace
from datetime import datetime
from typing import Any, cast, overload

import orjson
from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, defer, load_only

from service.db import notify
from service.db.batches import PredictionBatchRow
from service.db.ids import can_exist
from service.db.inference import IntervalRow
from service.db.models import (
    DatasetRow,
    FixedEffectRow,
    JobRow,
    ModelMetricRow,
    ModelRow,
    VarianceComponentRow,
    utcnow,
)
from service.db.registry import ModelAliasRow
from service.models.listing import Cursor, ModelFilter, Sort
from service.stats.fit import FittedModel
from service.stats.results import FitResult, Metrics, RandomEffectsTerm


def add_model(session: Session, row: ModelRow, *, flush: bool = True) -> ModelRow:
    """Add a new model; ``flush=False`` leaves its INSERT to the next flush (one flush for
    the model and its job, when the job is queued in the same transaction)."""
    session.add(row)
    if flush:
        session.flush()
    return row


# built once (a statement costs more to build than to run), the id a parameter
_BY_ID = select(ModelRow).where(ModelRow.id == bindparam("model_id"))
_BY_ID_LOCKED = _BY_ID.with_for_update()
# what a model's document shows: not the prediction state nor the conditional modes, the
# two largest columns, which a read of the whole row decodes from JSON for nothing
_DOCUMENT_BY_ID = _BY_ID.options(defer(ModelRow.prediction_state, raiseload=True),
                                 defer(ModelRow.conditional_modes, raiseload=True))


def get_model(session: Session, model_id: str, *, for_update: bool = False) -> ModelRow | None:
    if not can_exist(model_id):
        return None
    statement = _BY_ID_LOCKED if for_update else _BY_ID
    return session.scalars(statement, {"model_id": model_id}).one_or_none()


def get_model_and_dataset(session: Session, model_id: str
                          ) -> tuple[ModelRow, DatasetRow | None] | None:
    """A model and its dataset (None: deleted), read together (a claim's transaction is
    made of such round trips); the dataset's bytes are deferred: read when first used."""
    if not can_exist(model_id):
        return None
    row = session.execute(_WITH_DATASET, {"model_id": model_id}).one_or_none()
    return None if row is None else (row[0], row[1])


_WITH_DATASET = (select(ModelRow, DatasetRow)
                 .outerjoin(DatasetRow, DatasetRow.id == ModelRow.dataset_id)
                 .where(ModelRow.id == bindparam("model_id"))
                 .options(defer(DatasetRow.content)))


def get_model_document(session: Session, model_id: str) -> ModelRow | None:
    """A model with what its JSON document shows (``Model.from_row``) loaded, and not its
    prediction state or conditional modes (reading either raises)."""
    if not can_exist(model_id):
        return None
    return session.scalars(_DOCUMENT_BY_ID, {"model_id": model_id}).one_or_none()


def model_exists(session: Session, model_id: str) -> bool:
    if not can_exist(model_id):
        return False
    return session.scalar(select(ModelRow.id).where(ModelRow.id == model_id)) is not None


def delete_jobs_of(session: Session, model_id: str, queued: bool) -> bool:
    """Delete the fit jobs of a model: only a queued one when ``queued`` (False: a worker
    claimed it first; on PostgreSQL the DELETE waits for the claim and then finds it
    running), else its finished ones."""
    statement = delete(JobRow).where(JobRow.target_id == model_id)
    statement = statement.where(JobRow.status == "queued" if queued
                                else JobRow.status != "running")
    deleted = session.execute(statement.execution_options(synchronize_session=False))
    return not queued or bool(deleted.rowcount)  # type: ignore[attr-defined]


def has_unfinished_batches(session: Session, model_id: str) -> bool:
    statement = select(PredictionBatchRow.id).where(
        PredictionBatchRow.model_id == model_id,
        PredictionBatchRow.status.in_(("queued", "running"))).limit(1)
    return session.scalar(statement) is not None


def ended_before(session: Session, statuses: Collection[str], cutoff: datetime,
                 limit: int) -> list[ModelRow]:
    """Models of ``statuses`` that finished before ``cutoff`` and that no alias points at
    (their results not loaded), oldest first."""
    aliased = select(ModelAliasRow.model_id)
    statement = (select(ModelRow)
                 .where(ModelRow.status.in_(statuses), ModelRow.finished_at < cutoff,
                        ModelRow.id.not_in(aliased))
                 .order_by(ModelRow.finished_at).limit(limit)
                 .options(load_only(ModelRow.id, ModelRow.status, raiseload=True)))
    return list(session.scalars(statement))


def cancel_fit_jobs(session: Session, model_id: str) -> int:
    """Cancel the model's queued or running fit job: never claimed again, and the worker
    running it finds its lease gone at its next tick (``service.jobs.lease``)."""
    statement = (update(JobRow)
                 .where(JobRow.target_id == model_id, JobRow.status.in_(("queued", "running")))
                 .values(status="cancelled", lease_owner=None, lease_expires_at=None,
                         finished_at=utcnow())
                 .execution_options(synchronize_session=False))
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def announce_finished(session: Session, model_id: str) -> None:
    """PostgreSQL: notify the API processes' long polls that the model has finished, as
    migration 0009's trigger does for succeeded and failed fits (delivered at commit)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, :model_id)"),
                        {"channel": notify.FINISHED, "model_id": model_id})


def delete_model(session: Session, row: ModelRow) -> None:
    """Delete a model with its result rows, intervals and (finished) batch predictions and
    their jobs (explicitly: SQLite enforces the foreign keys' cascades only with its
    pragma on)."""
    batches = select(PredictionBatchRow.id).where(PredictionBatchRow.model_id == row.id)
    session.execute(delete(JobRow).where(JobRow.target_id.in_(batches))
                    .execution_options(synchronize_session=False))
    for table in (FixedEffectRow, VarianceComponentRow, ModelMetricRow, IntervalRow,
                  PredictionBatchRow):
        session.execute(delete(table).where(table.model_id == row.id)
                        .execution_options(synchronize_session=False))
    session.delete(row)
    session.flush()


def get_prediction_columns(session: Session, model_id: str) -> ModelRow | None:
    """A model with only what predictions need loaded (id, status, tenant, prediction
    state): not its result document or conditional modes."""
    if not can_exist(model_id):
        return None
    statement = (select(ModelRow).where(ModelRow.id == model_id)
                 .options(load_only(ModelRow.id, ModelRow.status, ModelRow.tenant,
                                    ModelRow.prediction_state, raiseload=True)))
    return session.scalars(statement).one_or_none()


def get_model_version(session: Session, model_id: str) -> ModelRow | None:
    """A model with only its id, status, finish time and tags' revision loaded (for HTTP
    validators)."""
    if not can_exist(model_id):
        return None
    statement = (select(ModelRow).where(ModelRow.id == model_id)
                 .options(load_only(ModelRow.id, ModelRow.status, ModelRow.finished_at,
                                    ModelRow.tags_revision, raiseload=True)))
    return session.scalars(statement).one_or_none()


def finished_among(session: Session, model_ids: Collection[str],
                   finished: Collection[str]) -> set[str]:
    """Which of ``model_ids`` have one of the ``finished`` statuses (ids and statuses only:
    the result documents are not read)."""
    ids = [model_id for model_id in model_ids if can_exist(model_id)]
    if not ids:
        return set()
    statement = select(ModelRow.id).where(ModelRow.id.in_(ids), ModelRow.status.in_(finished))
    return set(session.scalars(statement))


def list_models(session: Session, limit: int, offset: int, dataset_id: str | None = None,
                with_result: bool = False, *, filters: ModelFilter | None = None,
                sort: Sort = "-created_at", after: Cursor | None = None
                ) -> tuple[list[ModelRow], int]:
    """A page of models in ``sort`` order (after ``after``, then ``offset`` more), and the
    count of all that pass ``filters``; their result documents are loaded only
    ``with_result``."""
    filters = filters or ModelFilter(dataset_id=dataset_id)
    if dataset_id is not None and filters.dataset_id is None:
        filters = replace(filters, dataset_id=dataset_id)
    if filters.dataset_id is not None and not can_exist(filters.dataset_id):
        return [], 0
    conditions = _conditions(filters)
    count = select(func.count()).select_from(ModelRow).where(*conditions)
    keys = _sort_columns(sort)
    statement = select(ModelRow).where(*conditions).order_by(
        *[column.desc() if descending else column.asc() for column, descending in keys],
        ModelRow.id)
    if after is not None:
        statement = statement.where(_after(keys, after))
    # what predictions and random effects need is never listed (it can be megabytes)
    statement = statement.options(defer(ModelRow.prediction_state),
                                  defer(ModelRow.conditional_modes))
    if not with_result:
        statement = statement.options(defer(ModelRow.result))
    total = session.scalar(count) or 0
    return list(session.scalars(statement.limit(limit).offset(offset))), total


def _conditions(filters: ModelFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for column, value in ((ModelRow.status, filters.status), (ModelRow.kind, filters.kind),
                          (ModelRow.name, filters.name),
                          (ModelRow.dataset_id, filters.dataset_id)):
        if value is not None:
            conditions.append(column == value)
    if filters.created_after is not None:
        conditions.append(ModelRow.created_at > filters.created_after)
    if filters.created_before is not None:
        conditions.append(ModelRow.created_at < filters.created_before)
    for key, value in filters.tags:
        # json_extract on SQLite, ->> on PostgreSQL
        conditions.append(ModelRow.tags[key].as_string() == value)
    return conditions


def _sort_columns(sort: Sort) -> list[tuple[Any, bool]]:
    """The ordered key of a sort (column, descending); the id breaks ties, ascending. A
    missing name or version sorts as '' or 0: SQLite and PostgreSQL place NULLs apart."""
    if sort == "name":
        return [(func.coalesce(ModelRow.name, ""), False),
                (func.coalesce(ModelRow.version, 0), False)]
    return [(ModelRow.created_at, sort == "-created_at")]


def _after(keys: list[tuple[Any, bool]], cursor: Cursor) -> ColumnElement[bool]:
    """Rows strictly after the cursor's position in the order of ``keys`` then id."""
    clauses: list[ColumnElement[bool]] = []
    equal: list[ColumnElement[bool]] = []
    for (column, descending), value in zip(keys, cursor.key, strict=True):
        # bound with the column's type (created_at: UTCDateTime)
        clauses.append(and_(*equal, column < value if descending else column > value))
        equal.append(column == value)
    clauses.append(and_(*equal, ModelRow.id > cursor.model_id))
    return or_(*clauses)


def find_same_fit(session: Session, dataset_id: str, formula: str, method: str,
                  weights: str | None = None) -> ModelRow | None:
    """The newest model of this formula, dataset, method and prior weights that has not
    failed, if any (its contrasts may differ: they change the coefficients, not the fit)."""
    same_weights = (ModelRow.weights.is_(None) if weights is None
                    else ModelRow.weights == weights)
    statement = (select(ModelRow)
                 .where(ModelRow.dataset_id == dataset_id, ModelRow.formula == formula,
                        ModelRow.method == method, same_weights, ModelRow.status != "failed")
                 .order_by(ModelRow.created_at.desc(), ModelRow.id).limit(1))
    return session.scalars(statement).first()


def mark_row_running(model: ModelRow) -> None:
    """``model`` (read in the caller's transaction) marked running, if it was waiting."""
    if model.status in ("queued", "running"):
        model.status = "running"
        model.started_at = utcnow()
        model.error = None


def mark_queued(session: Session, model_id: str) -> None:
    """Back to the queue after an attempt that will be retried."""
    model = get_model(session, model_id)
    if model is not None and model.status == "running":
        model.status = "queued"


def mark_failed(session: Session, model_id: str, problem: dict[str, Any]) -> None:
    """Record a failed fit with its RFC 9457 problem document; a stored result stays."""
    model = get_model(session, model_id)
    if model is None or model.status == "succeeded":
        return
    model.status = "failed"
    model.error = to_json(problem)
    model.finished_at = utcnow()


def store_fit_result(session: Session, model_id: str, fitted: FittedModel) -> bool:
    """Write a fit's result; False (nothing written) if the model is gone or already has one.

    The model row is locked first, so two writers of the same model serialize here and the
    second sees ``succeeded``; the result tables' primary keys are the last line of defence.
    """
    if not can_exist(model_id):
        return False
    # one UPDATE that finds, locks and writes the row (a read of it first, then the unit
    # of work's UPDATE, were two statements and an object's bookkeeping more)
    stored = session.execute(_STORE_RESULT, stored_result_values(model_id, fitted))
    if not stored.rowcount:  # type: ignore[attr-defined]
        return False  # gone, or succeeded already
    add_result_rows(session, model_id, fitted.result)
    return True


def stored_result_values(model_id: str, fitted: FittedModel) -> dict[str, Any]:
    """The parameters of ``_STORE_RESULT``: the model's result, prediction state and
    conditional modes as JSON data, and the moment."""
    result = fitted.result
    return {"model_id": model_id, "new_result": to_json(result.to_dict()),
            "new_prediction_state": to_json(fitted.prediction_state),
            "new_conditional_modes": to_json(list(result.conditional_modes)),
            "now": utcnow()}


def result_rows(model_id: str, result: FitResult) -> tuple[list[dict[str, Any]], ...]:
    """The rows of the fixed effects, the variance components and the metrics tables."""
    return (_fixed_effect_rows(model_id, result), variance_component_values(model_id, result),
            _metric_rows(model_id, result.metrics))


_STORE_RESULT = (update(ModelRow)
                 .where(ModelRow.id == bindparam("model_id"), ModelRow.status != "succeeded")
                 .values(result=bindparam("new_result", type_=ModelRow.result.type),
                         prediction_state=bindparam("new_prediction_state",
                                                    type_=ModelRow.prediction_state.type),
                         conditional_modes=bindparam("new_conditional_modes",
                                                     type_=ModelRow.conditional_modes.type),
                         status="succeeded", error=None, finished_at=bindparam("now"))
                 .execution_options(synchronize_session=False))


def add_result_rows(session: Session, model_id: str, result: FitResult) -> None:
    """The queryable rows of a stored result: fixed effects, variance components, metrics.

    Written as one INSERT of plain values per table in the session's transaction, not as
    row objects through the unit of work, whose bookkeeping per object made this the
    largest part of storing a small fit (19 metrics alone: 0.50 ms, 0.07 so)."""
    session.flush()  # the model's own changes first: the rows refer to it
    connection = session.connection()
    for statement, rows in zip((_INSERT_FIXED, _INSERT_VARIANCES, _INSERT_METRICS),
                               result_rows(model_id, result), strict=True):
        if rows:
            connection.execute(statement, rows)


_INSERT_FIXED = insert(cast(Table, FixedEffectRow.__table__))
_INSERT_VARIANCES = insert(cast(Table, VarianceComponentRow.__table__))
_INSERT_METRICS = insert(cast(Table, ModelMetricRow.__table__))


def _fixed_effect_rows(model_id: str, result: FitResult) -> list[dict[str, Any]]:
    return [
        {"model_id": model_id, "position": position, "term": _label(fe.term),
         "estimate": _num(fe.estimate), "std_error": _num(fe.std_error),
         "statistic": _num(fe.statistic), "df": _num(fe.df), "p_value": _num(fe.p_value),
         "conf_low": _num(fe.conf_low), "conf_high": _num(fe.conf_high),
         "aliased": fe.aliased}
        for position, fe in enumerate(result.fixed_effects)
    ]


def variance_component_values(model_id: str, result: FitResult) -> list[dict[str, Any]]:
    """Rows in the order and naming of R's ``as.data.frame(VarCorr(m))``.

    Per grouping term: the variances, then the covariances of each pair (i < j) with the
    correlation in ``std_dev``; a repeated group name gets R's ``.1``, ``.2`` suffix (as for
    ``(x || g)``); the residual row comes last. Least-squares fits have no VarCorr.
    """
    if result.kind != "lmm":
        return []
    rows: list[dict[str, Any]] = []

    def add(group: str, term1: str | None, term2: str | None, vcov: float, sdcor: float) -> None:
        rows.append({"model_id": model_id, "position": len(rows), "group_name": _label(group),
                     "term1": _label(term1), "term2": _label(term2), "variance": _num(vcov),
                     "std_dev": _num(sdcor)})

    for term, group in zip(result.random_effects, _unique_group_names(result.random_effects),
                           strict=True):
        for name, variance, sd in zip(term.terms, term.variance, term.std_dev, strict=True):
            add(group, name, None, variance, sd)
        n = len(term.terms)
        for i in range(n):
            for j in range(i + 1, n):
                corr = term.correlation[i][j]
                add(group, term.terms[i], term.terms[j],
                    corr * term.std_dev[i] * term.std_dev[j], corr)
    sigma = result.residual_std_dev
    add("Residual", None, None, sigma * sigma, sigma)
    return rows


def _unique_group_names(terms: tuple[RandomEffectsTerm, ...]) -> list[str]:
    # R's make.unique: the second "Subject" is "Subject.1", the third "Subject.2"
    seen: Counter[str] = Counter()
    names = []
    for term in terms:
        count = seen[term.group]
        names.append(term.group if count == 0 else f"{term.group}.{count}")
        seen[term.group] += 1
    return names


def _metric_rows(model_id: str, metrics: Metrics) -> list[dict[str, Any]]:
    return [
        {"model_id": model_id, "name": name, "value": _num(value)}
        for name, value in asdict(metrics).items()
        if value is None or isinstance(value, int | float)
    ]


# The name columns of the queryable result tables are this long; a name from a long column
# name or factor level is cut to fit (PostgreSQL refuses longer ones), the result document
# keeps it whole.
LABEL_LENGTH = 300


@overload
def _label(name: str) -> str: ...
@overload
def _label(name: None) -> None: ...
def _label(name: str | None) -> str | None:
    return name if name is None or len(name) <= LABEL_LENGTH else name[:LABEL_LENGTH - 1] + "…"


def _num(value: float | None) -> float | None:
    """A float for a database column; NaN and infinities (R's NA, Inf) become NULL."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def to_json(value: Any) -> Any:
    """``value`` (dicts, lists, tuples, dataclasses, numbers, numpy values) as strict JSON
    data: tuples become lists, dataclasses dicts of their fields, NaN and infinities
    null, keys text. orjson does it in C (a fit's conditional modes with their
    conditional covariances took 2 ms by ``asdict`` and a walk in Python); what it
    refuses (integers beyond 64 bits, keys that are not scalars) is walked here."""
    try:
        return orjson.loads(orjson.dumps(value, option=PLAIN_OPTIONS))
    except (orjson.JSONEncodeError, TypeError):
        return _plain(value)


PLAIN_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    # numpy scalars and arrays
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    raise TypeError(f"cannot store a {type(value).__name__} as JSON")
