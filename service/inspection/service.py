"""Residuals and plots of a stored model: its result applied to its dataset, never refitted."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from service.db.models import ModelRow
from service.errors import Conflict, InvalidInput, NotFound
from service.inspection.schemas import (
    BreuschPaganTest,
    GroupSpread,
    ResidualRow,
    Residuals,
    ResidualSummary,
)
from service.inspection.stored import model_frame, model_method, stored_fit
from service.models import service as models
from service.stats.formula import parse_formula
from service.stats.formula.tree import Formula
from service.stats.inspection import (
    ModelResiduals,
    model_plot_data,
    model_residuals,
    numeric_predictors,
)
from service.stats.plots import available_plots, render_plot
from service.stats.plots.catalog import PlotData
from service.stats.results import FitResult


@dataclass(frozen=True, eq=False)
class Inspected:
    """A succeeded model with what its residuals are computed from."""

    row: ModelRow
    formula: Formula
    result: FitResult
    data: pd.DataFrame

    @property
    def label(self) -> str:
        """How plot titles name the model."""
        what = f"{self.row.formula} ({model_method(self.row)})"
        return f"{self.row.name}: {what}" if self.row.name else what


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


def inspect(session: Session, model_id: str) -> Inspected:
    row = fitted_model(session, model_id)
    return Inspected(row=row, formula=parse_formula(row.formula), result=stored_fit(row),
                     data=model_frame(session, row))


def residual_table(session: Session, model_id: str,
                   group_columns: list[str]) -> tuple[ModelRow, ModelResiduals]:
    """The residual table of a model, with extra data columns to group by."""
    model = inspect(session, model_id)
    return model.row, model_residuals(model.formula, model.data, model.result,
                                      group_columns=list(dict.fromkeys(group_columns)))


def residuals(session: Session, model_id: str, group_columns: list[str]) -> Residuals:
    """Residuals with the Breusch-Pagan test (lm) and the spread per group."""
    row, res = residual_table(session, model_id, group_columns)
    bp = res.breusch_pagan
    return Residuals(
        model_id=row.id, kind=row.kind,  # type: ignore[arg-type]
        group_columns=list(res.group_columns),
        rows=[ResidualRow.model_validate(_levels_as_text(_clean(r), res.group_columns))
              for r in r_numbered(res.table).to_dict(orient="records")],
        summary=ResidualSummary(
            breusch_pagan=BreuschPaganTest(statistic=bp.statistic, df=bp.df,
                                           p_value=bp.p_value) if bp else None,
            spread=[GroupSpread.model_validate(_clean(r))
                    for r in res.spread.to_dict(orient="records")]),
    )


def residuals_csv(session: Session, model_id: str, group_columns: list[str]) -> str:
    """The residual table as CSV (a missing value is an empty field)."""
    _, res = residual_table(session, model_id, group_columns)
    text: str = r_numbered(res.table).to_csv(index=False, lineterminator="\n")
    return text


def r_numbered(table: pd.DataFrame) -> pd.DataFrame:
    """The residual table with rows numbered as R numbers them: the statistics core's
    0-based positions plus one, R's row names of the data frame (``names(resid(fit))``;
    rows dropped for missing values keep their gaps)."""
    return table.assign(row=table["row"].to_numpy() + 1)


def plot_names(session: Session, model_id: str, group: str | None) -> tuple[ModelRow, list[str]]:
    """The plots this model has (``group`` adds residuals by a data column to an lm)."""
    model = inspect(session, model_id)
    _check_group(model, group)
    n_numeric = len(numeric_predictors(model.formula, model.data))
    names = available_plots(model.result.kind, group is not None, n_numeric)
    return model.row, names


def render(session: Session, model_id: str, name: str, fmt: str, group: str | None) -> bytes:
    """Draw one plot of a model (404 with the available names for an unknown one)."""
    model = inspect(session, model_id)
    _check_group(model, group)
    data: PlotData = model_plot_data(model.formula, model.data, model.result,
                                     model_label=model.label, group_column=group)
    available = data.available
    if name not in available:
        raise NotFound(f"Model {model.row.id} has no plot {name!r}; available: "
                       f"{', '.join(available)}.", available=available)
    return render_plot(name, data, fmt)


def _check_group(model: Inspected, group: str | None) -> None:
    if group is not None and group not in model.data.columns:
        raise InvalidInput(f"The dataset of model {model.row.id} has no column {group!r} to "
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
