"""Model use cases: validate a spec against its dataset and queue the fit; read models;
predict from a stored model (its prediction state only, never the dataset)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from service.datasets import repository as datasets
from service.datasets.service import clean_name
from service.db.models import ModelRow, utcnow
from service.errors import Conflict, NotFound
from service.jobs import repository as jobs
from service.models import repository
from service.models.schemas import ModelCreate, NewLevels
from service.polling import poll_until
from service.stats.design import check_columns
from service.stats.formula import parse_formula

FINISHED = ("succeeded", "failed")
# reads the new data of a prediction, given the columns to read as categorical text
FrameReader = Callable[[Collection[str]], pd.DataFrame]
FIT_JOB = "fit"
# Long-poll re-reads start quick (small fits finish in milliseconds) and slow down.


def create_model(session: Session, spec: ModelCreate, max_attempts: int) -> ModelRow:
    """Check the formula against the dataset, store the model and queue its fit."""
    formula = parse_formula(spec.formula)
    dataset = datasets.get_dataset(session, spec.dataset_id)
    if dataset is None:
        raise NotFound(f"There is no dataset with id {spec.dataset_id!r}.")
    check_columns(formula, {c["name"]: c["dtype"] for c in dataset.columns})
    row = ModelRow(
        id=str(uuid.uuid4()), name=clean_name(spec.name), dataset_id=dataset.id,
        formula=spec.formula, method=spec.method, kind=formula.kind, status="queued",
        pool=spec.pool if formula.kind == "lm_by_group" else None, created_at=utcnow(),
    )
    repository.add_model(session, row)
    # same transaction as the model: a model is never stored without its job
    jobs.enqueue(session, FIT_JOB, row.id, max_attempts)
    return row


def get_model(session: Session, model_id: str) -> ModelRow:
    row = repository.get_model(session, model_id)
    if row is None:
        raise NotFound(f"There is no model with id {model_id!r}.")
    return row


def list_models(session: Session, limit: int, offset: int, dataset_id: str | None
                ) -> tuple[list[ModelRow], int]:
    return repository.list_models(session, limit, offset, dataset_id=dataset_id)


def _read_detached(session: Session, model_id: str) -> ModelRow:
    row = get_model(session, model_id)
    # End the read transaction between polls: the next read must see the worker's newest
    # commit, and SQLite transactions here hold the write lock while open. The detached
    # row keeps its loaded values.
    session.expunge(row)
    session.rollback()
    return row


async def wait_for_model(session: Session, model_id: str, wait_seconds: float,
                         gone: Callable[[], Awaitable[bool]] | None = None) -> ModelRow:
    """The model, re-read until its fit has finished or ``wait_seconds`` have passed.

    ``gone`` tells whether the client has stopped waiting (then the current row is returned).
    """
    return await poll_until(lambda: _read_detached(session, model_id),
                            lambda row: row.status in FINISHED, wait_seconds, gone)


def predict(session: Session, model_id: str, read: FrameReader,
            include_random_effects: bool, new_levels: NewLevels) -> list[float | None]:
    """Predictions for the rows that ``read`` gives, from a model whose fit succeeded.

    ``read`` is called with the columns the model holds as categorical, which it reads as
    text (what a CSV cell says, a JSON number as R's ``as.character`` writes it).
    """
    row = get_fitted_model(session, model_id)
    if row.prediction_state is None:
        raise Conflict(f"Model {row.id} stored no prediction state.", model_status=row.status)
    from service.stats.predict import predict as predict_from_state

    state: dict[str, Any] = row.prediction_state
    frame = read(categorical_columns(state))
    values = predict_from_state(state, frame, include_random_effects=include_random_effects,
                                new_levels=new_levels)
    return _floats(values)


def categorical_columns(state: dict[str, Any]) -> list[str]:
    """The data columns a stored model encodes as factors (per-group models: their
    groups' formulas; the grouping columns themselves are labelled from the new data)."""
    encoders = ([group["encoder"] for group in state.get("groups", {}).values()]
                if state.get("kind") == "lm_by_group" else [state.get("encoder", {})])
    names = (str(name) for encoder in encoders
             for name, kind in encoder.get("kinds", {}).items() if kind == "categorical")
    return list(dict.fromkeys(names))


def get_fitted_model(session: Session, model_id: str) -> ModelRow:
    """A model whose fit succeeded (409 otherwise)."""
    row = get_model(session, model_id)
    if row.status != "succeeded":
        raise Conflict(_not_ready(row), model_status=row.status)
    return row


def _not_ready(row: ModelRow) -> str:
    if row.status == "failed":
        return f"Model {row.id} has no fit to predict from: its fit failed (see its 'error')."
    return (f"Model {row.id} is {row.status}; predictions need a finished fit. "
            f"Wait with GET /v1/models/{row.id}?wait=30.")


def _floats(values: Sequence[Any] | Any) -> list[float | None]:
    out: list[float | None] = []
    for value in list(values):
        number = float(value) if value is not None else math.nan
        out.append(number if math.isfinite(number) else None)
    return out
