"""A stored model read back as the statistics core's objects: its ``FitResult`` (from the
result document and conditional modes in the models table) and its dataset's rows."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Protocol, TypeVar

import pandas as pd
from sqlalchemy.orm import Session

from service.datasets import repository as datasets
from service.datasets.ingest import read_parquet
from service.db.models import ModelRow
from service.errors import ServiceError
from service.stats.results import (
    ConditionalModes,
    Convergence,
    Covariance,
    FitResult,
    FixedEffect,
    GroupFit,
    Metrics,
    RandomEffectsTerm,
)

T = TypeVar("T")


class DatasetGone(ServiceError):
    """The model's dataset was deleted; what needs its rows cannot be computed."""

    status = 409
    slug = "dataset-deleted"
    title = "The model's dataset was deleted"


class StoredResult(Protocol):
    """What a ``FitResult`` is rebuilt from: a ``ModelRow``, or a ``StoredModel`` sent to a
    compute child."""

    @property
    def kind(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def result(self) -> dict[str, Any] | None: ...
    @property
    def conditional_modes(self) -> list[dict[str, Any]] | None: ...


def model_method(row: StoredResult) -> str:
    """The estimation method as the statistics core names it (``compare_models`` checks it)."""
    if row.kind == "lm":
        return "OLS"
    if row.kind == "lm_by_group":
        return "OLS by group"
    return row.method


def stored_fit(row: StoredResult) -> FitResult:
    """The ``FitResult`` a succeeded model stored (JSON nulls stay None, R's NA)."""
    doc: dict[str, Any] = row.result or {}
    return FitResult(
        kind=row.kind,  # type: ignore[arg-type]
        method=model_method(row),
        fixed_effects=tuple(_build(FixedEffect, fe) for fe in doc.get("fixed_effects", [])),
        metrics=_build(Metrics, doc["metrics"]),
        convergence=_build(Convergence, doc.get("convergence") or {
            "converged": True, "singular": False, "optimizer": "", "iterations": 0}),
        residual_std_dev=doc.get("residual_std_dev") or 0.0,
        random_effects=tuple(_build(RandomEffectsTerm, t)
                             for t in doc.get("random_effects", [])),
        conditional_modes=tuple(_build(ConditionalModes, m)
                                for m in row.conditional_modes or []),
        theta=tuple(doc.get("theta") or ()),
        fit_seconds=doc.get("fit_seconds") or 0.0,
        messages=tuple(doc.get("messages") or ()),
        groups=tuple(_group(g) for g in doc.get("groups", [])),
        # results stored before vcov was computed have none
        vcov=_build(Covariance, doc["vcov"]) if doc.get("vcov") else None,
    )


def _group(doc: dict[str, Any]) -> GroupFit:
    return GroupFit(
        level=str(doc["level"]), n_obs=int(doc["n_obs"]),
        fixed_effects=tuple(_build(FixedEffect, fe) for fe in doc.get("fixed_effects", [])),
        metrics=_build(Metrics, doc["metrics"]) if doc.get("metrics") else None,
        error=doc.get("error"),
    )


def _build(cls: type[T], doc: dict[str, Any]) -> T:
    # JSON turned the dataclasses' tuples into lists; the core compares term tuples
    # (random_part matches blocks by terms), so they go back to tuples here.
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: _tuples(v) for k, v in doc.items() if k in names})


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def dataset_content(session: Session, row: ModelRow) -> bytes:
    """The Parquet bytes of the rows the model was fitted to (409 if deleted)."""
    dataset = datasets.get_dataset(session, row.dataset_id, with_content=True)
    if dataset is None:
        raise DatasetGone(
            f"Dataset {row.dataset_id} of model {row.id} was deleted, so its rows (which "
            "residuals and plots are computed from) are gone. The model still predicts; to "
            "inspect it, upload the data again and fit the model anew.",
            dataset_id=row.dataset_id)
    return dataset.content


def model_frame(content: bytes) -> pd.DataFrame:
    """The dataset's rows read as the worker read them."""
    return read_parquet(content)
