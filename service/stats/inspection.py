"""What the residuals and plots of a stored model show, computed from its result.

Given the parsed formula, the dataset and the stored ``FitResult``, this rebuilds the
design and applies the stored estimates (nothing is refitted): fitted values include the
conditional modes for mixed models and each group's own coefficients for per-group fits.
The web layer calls ``model_residuals`` and ``model_plot_data`` and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from service.stats.design import build_design
from service.stats.design.expr import deparse, expr_columns, is_categorical_expr
from service.stats.design.types import Design, FloatArray
from service.stats.design.values import infer_kinds
from service.stats.diagnostics import BreuschPagan, residual_spread, residual_table
from service.stats.errors import StatsError
from service.stats.formula.tree import Formula
from service.stats.lmlist import by_group_residual_table
from service.stats.ols import fitted_values
from service.stats.plots.catalog import PlotData
from service.stats.results import ConditionalModes, FitResult


@dataclass(frozen=True, eq=False)
class ModelResiduals:
    """The residual table of a model and the summaries that go with it.

    ``table`` has ``row, fitted, residual, std_residual`` and the grouping columns
    ``group_columns``; ``breusch_pagan`` is set for ``lm`` fits (from the stored metrics);
    ``spread`` is the residual standard deviation per level of each grouping column;
    ``population`` the fixed-effects-only fitted values of a mixed model (per table row).
    """

    table: pd.DataFrame
    group_columns: tuple[str, ...]
    breusch_pagan: BreuschPagan | None
    spread: pd.DataFrame
    population: FloatArray | None = None


def model_residuals(formula: Formula, data: pd.DataFrame, result: FitResult, *,
                    group_columns: Sequence[str] = ()) -> ModelResiduals:
    """Residuals of a stored fit on its dataset.

    Parameters
    ----------
    formula : Formula
        The model's parsed formula.
    data : DataFrame
        The dataset the model was fitted to.
    result : FitResult
        The stored result.
    group_columns : sequence of str
        Extra data columns to attach and summarise by (for an ``lm``, whose residuals the
        example looks at by a group that is not in the model).

    Returns
    -------
    ModelResiduals
    """
    extra = [c for c in group_columns if c not in data.columns]
    if extra:
        raise StatsError("The following columns are not present in the table: "
                         + ", ".join(extra))
    population: FloatArray | None = None
    if result.kind == "lm_by_group":
        table = by_group_residual_table(formula, data, result)
    else:
        design = build_design(formula, data)
        fixed_part = fitted_values(design, result)
        if result.kind == "lmm":
            population = design.with_offset(design.unweighted(fixed_part))
            fitted = fixed_part + random_part(design, result.conditional_modes)
            table = residual_table(design, fitted, sigma=result.residual_std_dev)
        else:
            table = residual_table(design, fixed_part)
    for column in group_columns:
        if column not in table.columns:
            table[column] = data[column].iloc[table["row"].to_numpy()].to_numpy()
    groups = tuple(c for c in table.columns if c not in ("row", "fitted", "residual",
                                                         "std_residual"))
    bp = None
    m = result.metrics
    if result.kind == "lm" and m.bp_statistic is not None and m.bp_df is not None:
        bp = BreuschPagan(statistic=m.bp_statistic, df=m.bp_df, p_value=m.bp_p_value or 0.0)
    return ModelResiduals(table=table, group_columns=groups, breusch_pagan=bp,
                          spread=residual_spread(table, groups), population=population)


def model_plot_data(formula: Formula, data: pd.DataFrame, result: FitResult, *,
                    model_label: str, group_column: str | None = None) -> PlotData:
    """The arrays every plot of a stored model draws from.

    Parameters
    ----------
    formula : Formula
        The model's parsed formula.
    data : DataFrame
        The dataset the model was fitted to.
    result : FitResult
        The stored result.
    model_label : str
        How the titles name the model (its formula, method, name).
    group_column : str, optional
        For an ``lm``: a data column to show residuals by.

    Returns
    -------
    PlotData
        Residuals by the model's own grouping factor (the first random-effects group, or
        the ``| group`` of a per-group model), else by ``group_column``; the fitted-line
        plot uses the one numeric predictor, with one line per combination of the
        model's categorical predictors and grouping factors.
    """
    residuals = model_residuals(formula, data, result,
                                group_columns=[group_column] if group_column else [])
    table = residuals.table
    rows = table["row"].to_numpy()
    numeric = numeric_predictors(formula, data)
    lines = _line_groups(formula, data, table)
    group_name = residuals.group_columns[0] if residuals.group_columns else None
    x_name = numeric[0] if len(numeric) == 1 else None
    return PlotData(
        kind=result.kind,
        model_label=model_label,
        response_name=_response_label(formula),
        fitted=table["fitted"].to_numpy(dtype=np.float64),
        residuals=table["residual"].to_numpy(dtype=np.float64),
        std_residuals=table["std_residual"].to_numpy(dtype=np.float64),
        group_name=group_name,
        group_values=tuple(table[group_name]) if group_name else None,
        x_name=x_name,
        x=data[x_name].iloc[rows].to_numpy(dtype=np.float64) if x_name else None,
        y=(table["fitted"] + table["residual"]).to_numpy(dtype=np.float64),
        population=residuals.population,
        conditional_modes=result.conditional_modes,
        n_numeric_predictors=len(numeric),
        line_group_name=lines[0] if lines else None,
        line_group_values=lines[1] if lines else None,
    )


def random_part(design: Design, modes: Sequence[ConditionalModes]) -> FloatArray:
    """``Z b̂`` for the design's rows: each block's covariates times its level's modes.

    Blocks are matched to the stored modes by group and terms (``(x || g)`` gives two
    blocks with the same group), levels by label.
    """
    total = np.zeros(design.n_obs, dtype=np.float64)
    unused = list(modes)
    for block in design.random:
        match = next((m for m in unused if m.group == block.group and m.terms == block.terms),
                     None)
        if match is None:
            raise StatsError(f"The stored fit has no conditional modes for the term "
                             f"({' + '.join(block.terms)} | {block.group}).")
        unused.remove(match)
        by_level = dict(zip(match.levels, match.modes, strict=True))
        table = np.array([by_level.get(level, (0.0,) * block.q) for level in block.levels],
                         dtype=np.float64).reshape(block.n_levels, block.q)
        known = block.codes >= 0
        total[known] += np.einsum("ij,ij->i", block.covariates[known],
                                  table[block.codes[known]])
    return total


def numeric_predictors(formula: Formula, data: pd.DataFrame) -> list[str]:
    """Numeric data columns read by the fixed-effect terms (not as factors), in order."""
    kinds = infer_kinds(data)
    names: list[str] = []
    for term in formula.fixed:
        for factor in term.factors:
            if not is_categorical_expr(factor, kinds):
                names.extend(c for c in expr_columns(factor) if kinds.get(c) == "numeric")
    return list(dict.fromkeys(names))


def _line_groups(formula: Formula, data: pd.DataFrame,
                 table: pd.DataFrame) -> tuple[str, tuple[str, ...]] | None:
    # One fitted line per combination of whatever shifts or tilts it: the fixed
    # categorical predictors and the random or per-group grouping factors.
    kinds = infer_kinds(data)
    rows = table["row"].to_numpy()
    columns: dict[str, pd.Series] = {}
    for term in formula.fixed:
        for factor in term.factors:
            if is_categorical_expr(factor, kinds):
                for c in expr_columns(factor):
                    columns[c] = data[c].iloc[rows].astype(str).reset_index(drop=True)
    for label in [r.group_label for r in formula.random] + (
            [":".join(formula.by_group)] if formula.by_group else []):
        columns[label] = table[label].astype(str).reset_index(drop=True)
    if not columns:
        return None
    parts = list(columns.values())
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + ":" + part
    return ":".join(columns), tuple(joined)


def _response_label(formula: Formula) -> str:
    return deparse(formula.response)
