"""Residuals and plots of a stored model: its result applied to its dataset, never refitted.

``load`` reads the model and its dataset (on a request thread, briefly); the rest are pure
functions of what it read, which the endpoints run in a compute child (service.compute).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from service.db.models import ModelRow
from service.db.session import end_reads
from service.errors import Conflict, InvalidInput, NotFound
from service.inspection.schemas import (
    BreuschPaganTest,
    GroupSpread,
    ResidualRow,
    Residuals,
    ResidualSummary,
)
from service.inspection.stored import dataset_content, model_frame, model_method, stored_fit
from service.models import service as models
from service.stats.formula import parse_formula
from service.stats.formula.tree import Formula, with_contrasts, with_weights
from service.stats.inspection import (
    ModelResiduals,
    model_plot_data,
    model_residuals,
    numeric_predictors,
)
from service.stats.plots import available_plots, render_plot
from service.stats.plots.catalog import PlotData
from service.stats.results import FitResult


@dataclass(frozen=True)
class StoredModel:
    """A succeeded model and its dataset's rows, as read from the database: everything its
    residuals and plots are computed from (plain data, sent to a compute child)."""

    id: str
    name: str | None
    formula: str
    kind: str
    method: str
    result: dict[str, Any] | None
    conditional_modes: list[dict[str, Any]] | None
    dataset: bytes  # Parquet
    contrasts: dict[str, str] | None = None  # the coding of factors (R's contrasts)
    weights: str | None = None  # the column of prior weights

    @property
    def label(self) -> str:
        """How plot titles name the model."""
        what = f"{self.formula} ({model_method(self)})"
        return f"{self.name}: {what}" if self.name else what


@dataclass(frozen=True, eq=False)
class Inspected:
    """A stored model with what its residuals are computed from."""

    model: StoredModel
    formula: Formula
    result: FitResult
    data: pd.DataFrame

    @classmethod
    def of(cls, model: StoredModel) -> Inspected:
        formula = with_weights(with_contrasts(parse_formula(model.formula), model.contrasts),
                               model.weights)
        return cls(model=model, formula=formula, result=stored_fit(model),
                   data=model_frame(model.dataset))


def fitted_model(session: Session, model_id: str) -> ModelRow:
    """A model whose fit succeeded: 404 if unknown, 409 if not (yet) fitted."""
    row = models.get_model(session, model_id)
    if row.status == "failed":
        raise Conflict(f"Model {row.id} has no residuals or plots: its fit failed (see its "
                       "'error').", model_status=row.status)
    if row.status != "succeeded":
        raise Conflict(f"Model {row.id} is {row.status}; residuals and plots need a finished "
                       f"fit. Wait with GET /v1/models/{row.id}?wait=30.",
                       model_status=row.status)
    return row


def load(session: Session, model_id: str) -> StoredModel:
    """Read a succeeded model and its dataset, then end the read transaction: what is
    computed from them must not hold one."""
    return stored_model(session, fitted_model(session, model_id))


def stored_model(session: Session, row: ModelRow) -> StoredModel:
    """A succeeded model's row with its dataset's rows (409 if the dataset was deleted),
    read before the read transaction ends."""
    model = StoredModel(id=row.id, name=row.name, formula=row.formula, kind=row.kind,
                        method=row.method, result=row.result,
                        conditional_modes=row.conditional_modes,
                        dataset=dataset_content(session, row), contrasts=row.contrasts,
                        weights=row.weights)
    end_reads(session)
    return model


# What follows runs in a compute child (service.compute): pure functions of a StoredModel.

def residual_table(model: StoredModel, group_columns: list[str]) -> ModelResiduals:
    """The residual table of a model, with extra data columns to group by."""
    inspected = Inspected.of(model)
    return model_residuals(inspected.formula, inspected.data, inspected.result,
                           group_columns=list(dict.fromkeys(group_columns)))


def residuals(model: StoredModel, group_columns: list[str]) -> Residuals:
    """Residuals with the Breusch-Pagan test (lm) and the spread per group."""
    res = residual_table(model, group_columns)
    bp = res.breusch_pagan
    return Residuals(
        model_id=model.id, kind=model.kind,  # type: ignore[arg-type]
        group_columns=list(res.group_columns),
        rows=[ResidualRow.model_validate(_levels_as_text(_clean(r), res.group_columns))
              for r in r_numbered(res.table).to_dict(orient="records")],
        summary=ResidualSummary(
            breusch_pagan=BreuschPaganTest(statistic=bp.statistic, df=bp.df,
                                           p_value=bp.p_value) if bp else None,
            spread=[GroupSpread.model_validate(_clean(r))
                    for r in res.spread.to_dict(orient="records")]),
    )


def residuals_csv(model: StoredModel, group_columns: list[str]) -> str:
    """The residual table as CSV (a missing value is an empty field)."""
    res = residual_table(model, group_columns)
    text: str = r_numbered(res.table).to_csv(index=False, lineterminator="\n")
    return text


def r_numbered(table: pd.DataFrame) -> pd.DataFrame:
    """The residual table with rows numbered as R numbers them: the statistics core's
    0-based positions plus one, R's row names of the data frame (``names(resid(fit))``;
    rows dropped for missing values keep their gaps)."""
    return table.assign(row=table["row"].to_numpy() + 1)


def plot_names(model: StoredModel, group: str | None) -> list[str]:
    """The plots this model has (``group`` adds residuals by a data column to an lm)."""
    inspected = Inspected.of(model)
    _check_group(inspected, group)
    n_numeric = len(numeric_predictors(inspected.formula, inspected.data))
    return available_plots(inspected.result.kind, group is not None, n_numeric)


def render(model: StoredModel, name: str, fmt: str, group: str | None) -> bytes:
    """Draw one plot of a model (404 with the available names for an unknown one)."""
    inspected = Inspected.of(model)
    _check_group(inspected, group)
    data: PlotData = model_plot_data(inspected.formula, inspected.data, inspected.result,
                                     model_label=model.label, group_column=group)
    available = data.available
    if name not in available:
        raise NotFound(f"Model {model.id} has no plot {name!r}; available: "
                       f"{', '.join(available)}.", available=available)
    return render_plot(name, data, fmt)


def _check_group(model: Inspected, group: str | None) -> None:
    if group is not None and group not in model.data.columns:
        raise InvalidInput(f"The dataset of model {model.model.id} has no column {group!r} to "
                           "group residuals by.", columns=[str(c) for c in model.data.columns])


def _levels_as_text(record: dict[str, Any], group_columns: tuple[str, ...]) -> dict[str, Any]:
    for column in group_columns:
        if record.get(column) is not None:
            record[column] = str(record[column])
    return record


def _clean(record: dict[Any, Any]) -> dict[str, Any]:
    # JSON has no NaN: R's NA (a one-row group's sd, a leverage-one residual) is null.
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        elif hasattr(value, "item"):
            value = value.item()
        out[str(key)] = value
    return out
