"""Residual diagnostics: the residual table, a test of constant variance for least
squares fits, and the residual spread per group for mixed models.

Standardized residuals follow R: for a least squares fit they are ``rstandard.lm``
(internally studentized, using the hat values), for a mixed model the residual divided by
the estimated residual standard deviation σ̂ (what ``plot.merMod`` calls
``resid(., type = "pearson")`` with unit weights).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from service.stats.design.types import Design, FloatArray
from service.stats.errors import StatsError

TABLE_COLUMNS = ("row", "fitted", "residual", "std_residual")


@dataclass(frozen=True)
class BreuschPagan:
    """Koenker's studentized Breusch-Pagan test, as R's ``lmtest::bptest`` by default.

    The auxiliary regressors are the model's own fixed-effects columns; ``df`` is their
    number less one (the intercept).
    """

    statistic: float
    df: int
    p_value: float


def residual_table(
    design: Design,
    fitted: npt.ArrayLike,
    *,
    sigma: float | None = None,
    data: pd.DataFrame | None = None,
    group_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per observation used in the fit: fitted value, residual, standardized.

    Parameters
    ----------
    design : Design
        The fitting design (with its response).
    fitted : array_like
        Fitted values, one per design row (for mixed models including the conditional
        modes).
    sigma : float, optional
        The residual standard deviation σ̂ of a mixed model; required when the design has
        random-effects blocks, ignored otherwise.
    data : DataFrame, optional
        The frame the design was built from, to attach ``group_columns`` from.
    group_columns : sequence of str
        Extra columns of ``data`` to attach (for example the grouping factor of an ``lm``
        whose residuals are to be looked at by group).

    Returns
    -------
    DataFrame
        Columns ``row`` (0-based position in the input frame), ``fitted``, ``residual``,
        ``std_residual``, then one column per random-effects grouping factor (named by its
        lme4 label) and per requested group column.
    """
    if design.y is None:
        raise StatsError("Residuals need the response; this design has none.")
    fit = np.asarray(fitted, dtype=np.float64)
    if fit.shape != (design.n_obs,):
        raise StatsError(
            f"Expected {design.n_obs} fitted values (one per row used), got {fit.size}."
        )
    resid = design.y - fit
    if design.random:
        if sigma is None or not sigma > 0:
            raise StatsError("Standardizing mixed-model residuals needs σ̂ > 0 (sigma=).")
        std = resid / sigma
    else:
        std = standardized_ols_residuals(design.X, resid)
    # y is the response minus any offset (times √w with prior weights, so the standardized
    # residuals are R's Pearson ones); fitted values and residuals shown are R's: in the
    # response's scale, the offset added
    table = pd.DataFrame(
        {"row": design.rows.astype(np.int64),
         "fitted": design.with_offset(design.unweighted(fit)),
         "residual": design.unweighted(resid),
         "std_residual": std}
    )
    for block in design.random:
        labels = np.asarray(block.levels, dtype=object)[block.codes]
        table[block.group] = labels
    if group_columns:
        if data is None:
            raise StatsError("group_columns needs the data frame the design was built from.")
        missing = [c for c in group_columns if c not in data.columns]
        if missing:
            raise StatsError(f"Unknown group columns: {', '.join(missing)}")
        for column in group_columns:
            if column not in table.columns:
                table[column] = data[column].iloc[design.rows].to_numpy()
    return table


def hat_values(X: FloatArray) -> FloatArray:
    """Diagonal of the hat matrix ``X (XᵀX)⁻¹ Xᵀ``, from a thin QR decomposition."""
    q, _ = np.linalg.qr(np.asarray(X, dtype=np.float64), mode="reduced")
    return np.asarray(np.einsum("ij,ij->i", q, q), dtype=np.float64)


def standardized_ols_residuals(X: FloatArray, residuals: FloatArray) -> FloatArray:
    """R's ``rstandard.lm``: ``e / (s · sqrt(1 - h))``, ``s² = RSS / (n - p)``.

    A point with leverage 1 has an undefined standardized residual (NaN), as in R.
    """
    n, p = X.shape
    e = np.asarray(residuals, dtype=np.float64)
    s = math.sqrt(float(e @ e) / (n - p))
    h = hat_values(X)
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = s * np.sqrt(1.0 - h)
        out = np.where(1.0 - h > 1e-10, e / denom, np.nan)
    return np.asarray(out, dtype=np.float64)


def breusch_pagan(X: FloatArray, residuals: FloatArray, *,
                  has_intercept: bool = True) -> BreuschPagan | None:
    """Studentized (Koenker) Breusch-Pagan test of constant residual variance.

    Computed as ``lmtest::bptest(model)`` does with its default ``studentize = TRUE``:
    regress ``w = e² - mean(e²)`` on the model's columns Z; the statistic
    ``n · ‖ŵ‖² / ‖w‖²`` is referred to χ² with ``ncol(Z) - 1`` degrees of freedom. With an
    intercept in Z this is ``n · R²`` of that regression, which is statsmodels'
    ``het_breuschpagan(..., robust=True)``.

    Parameters
    ----------
    X : ndarray
        The model's fixed-effects matrix (n × p).
    residuals : ndarray
        The least squares residuals.
    has_intercept : bool
        Whether one of X's columns is the intercept.

    Returns
    -------
    BreuschPagan or None
        None, as ``bptest`` refuses, without an intercept or without a regressor beside it;
        also None for residuals that are all equal in size.
    """
    Z = np.asarray(X, dtype=np.float64)
    e = np.asarray(residuals, dtype=np.float64)
    n, p = Z.shape
    df = p - 1
    if df < 1 or not has_intercept:
        return None
    e2 = e * e
    w = e2 - e2.mean()
    ww = float(w @ w)
    if ww == 0.0:
        return None
    coef, *_ = np.linalg.lstsq(Z, w, rcond=None)
    w_hat = Z @ coef
    statistic = n * float(w_hat @ w_hat) / ww
    return BreuschPagan(
        statistic=statistic, df=df, p_value=float(stats.chi2.sf(statistic, df))
    )


def residual_spread(table: pd.DataFrame, group_columns: Sequence[str]) -> pd.DataFrame:
    """Residual spread per level of each grouping column of a residual table.

    Parameters
    ----------
    table : DataFrame
        A ``residual_table`` result.
    group_columns : sequence of str
        Its grouping columns to summarise by.

    Returns
    -------
    DataFrame
        Columns ``group``, ``level``, ``n_obs``, ``mean_residual`` and ``residual_sd``
        (R's ``sd``, denominator n - 1; NaN for a level with one row), levels sorted.
    """
    parts = []
    for column in group_columns:
        if column not in table.columns:
            raise StatsError(f"The residual table has no column {column!r}.")
        # Grouped on the original values so that numeric levels sort as numbers.
        grouped = table.groupby(column, sort=True)["residual"]
        summary = grouped.agg(["size", "mean", "std"]).reset_index()
        summary.columns = pd.Index(["level", "n_obs", "mean_residual", "residual_sd"])
        summary["level"] = summary["level"].astype(str)
        summary.insert(0, "group", column)
        parts.append(summary)
    if not parts:
        return pd.DataFrame(columns=["group", "level", "n_obs", "mean_residual", "residual_sd"])
    return pd.concat(parts, ignore_index=True)
