"""Separate least squares fits per level of a grouping factor: lme4's ``lmList``.

``y ~ x | g`` fits ``y ~ x`` to the rows of each level of ``g`` on its own (no pooling),
the "no pooling" end of the example analysis that a mixed model's partial pooling sits
between. A level whose rows cannot be fitted (too few rows for the coefficients, a
constant predictor leaving a factor with one level, an exact fit) is reported with the
reason instead of failing the model, as ``lmList`` returns ``NULL`` for it.

The model-level numbers pool the groups that were fitted:

- ``n_obs``, ``deviance`` (RSS) and ``npar`` are sums over groups;
- ``loglik`` is the sum of the groups' log-likelihoods (independent models, each with its
  own σ), so ``aic = -2 loglik + 2 npar`` and ``bic = -2 loglik + log(n_obs) npar``;
- ``sigma`` and ``df_residual`` are lme4's ``pooledSD``: ``sqrt(RSS / df)`` with ``df`` the
  sum over groups of rows minus coefficients; as in lme4, an aliased (NA) coefficient of a
  group counts among its coefficients (``length(coef(el))``), so the pooled df is then
  smaller than the sum of the groups' residual df. ``rmse`` is over all groups' residuals;
- ``fixed_effects`` is empty: there is no single coefficient vector.

Each group's coefficient table is, by default, ``summary(lmList(...))``'s with ``pool =
TRUE`` (lme4's default): standard errors use the pooled σ instead of the group's own
(scaled by ``pooledSD / sigma``), t tests and 95% intervals the pooled df (the intervals of
``confint(lmList(...), pool = TRUE)``). With ``pool=False`` each group's table is its own
``summary(lm(...))`` and ``confint``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from service.stats import tdist
from service.stats.design import build_design
from service.stats.design.build import check_poly_inputs
from service.stats.design.types import Design, IntArray
from service.stats.design.values import ColumnKind, factor_codes, infer_kinds, sort_levels
from service.stats.diagnostics import residual_table
from service.stats.errors import DesignError, FitError, StatsError
from service.stats.formula.tree import Formula
from service.stats.ols import CONF_LEVEL, OPTIMIZER, fit_ols, fitted_values
from service.stats.results import Convergence, FitResult, GroupFit, Metrics


@dataclass(frozen=True, eq=False)
class GroupRows:
    """The rows (0-based positions in the data) of one level of the grouping factor."""

    level: str
    rows: IntArray


def fit_by_group(formula: Formula, data: pd.DataFrame, pool: bool = True) -> FitResult:
    """Fit the formula's model separately to each level of its ``| group`` part.

    Parameters
    ----------
    formula : Formula
        A parsed formula with ``by_group`` set (``y ~ x | g``).
    data : DataFrame
        The dataset. Rows with a missing group are dropped; rows with missing values in
        the model's columns are dropped within their group, as ``lm`` does.
    pool : bool
        Standard errors, t tests and intervals from the pooled residual SD and df (lme4's
        default ``pool = TRUE``), or from each group's own fit.

    Returns
    -------
    FitResult
        ``kind="lm_by_group"``, one ``GroupFit`` per level (levels in R's order), pooled
        metrics as described in the module docstring.

    Raises
    ------
    DesignError
        The formula has no grouping part or names unknown columns.
    FitError
        No level could be fitted (each level's reason is in the message).
    """
    return fit_groups(formula, data, pool).result


@dataclass(frozen=True, eq=False)
class GroupedFit:
    """A per-group fit, and the design and own lm fit (its σ and vcov, unpooled, as R's
    predict on each lm of an lmList uses) of each fitted level: what prediction needs."""

    result: FitResult
    designs: dict[str, Design]
    own_fits: dict[str, FitResult] = field(default_factory=dict)


def fit_groups(formula: Formula, data: pd.DataFrame, pool: bool = True) -> GroupedFit:
    """:func:`fit_by_group`, also returning each fitted level's design by level label."""
    groups, n_missing_group = split_by_group(formula, data)
    per_group = replace(formula, by_group=None)
    # lmList's model.frame over the whole data (na.pass) refuses a poly() of a column with
    # missing values before any group is fitted; each group's lm then sees its own rows.
    check_poly_inputs(per_group, data)
    designs: dict[str, Design] = {}
    own_fits: dict[str, FitResult] = {}
    fits: list[GroupFit] = []
    messages: list[str] = []
    n_dropped = n_missing_group
    n_coef: dict[str, int] = {}
    for group in groups:
        part = data.iloc[group.rows]
        try:
            design = build_design(per_group, part)
            fit = fit_ols(design)
        except StatsError as error:
            fits.append(GroupFit(level=group.level, n_obs=len(group.rows), fixed_effects=(),
                                 metrics=None, error=str(error)))
            messages.append(f"{group.level}: not fitted: {error}")
            continue
        n_dropped += design.n_dropped_missing
        designs[group.level] = design
        own_fits[group.level] = fit
        # lme4's pooledSD counts every coefficient, aliased (NA) ones too
        n_coef[group.level] = len(design.encoder.all_fixed_names)
        messages.extend(f"{group.level}: {m}" for m in fit.messages)
        fits.append(GroupFit(level=group.level, n_obs=fit.metrics.n_obs,
                             fixed_effects=fit.fixed_effects, metrics=fit.metrics))
    fitted = [g.metrics for g in fits if g.metrics is not None]
    if not fitted:
        reasons = "; ".join(f"{g.level}: {g.error}" for g in fits)
        raise FitError(f"No level of {_group_label(formula)} could be fitted ({reasons}).")
    if n_missing_group:
        messages.insert(0, f"{n_missing_group} rows with a missing {_group_label(formula)} "
                           "were left out.")
    pooled_sd, pooled_df = _pooled_sd(fits, n_coef)
    metrics = _pooled_metrics(fitted, n_dropped, pooled_sd, pooled_df)
    if pool:
        fits = [_pooled_group(g, pooled_sd, pooled_df) for g in fits]
    result = FitResult(
        kind="lm_by_group",
        method="OLS by group",
        fixed_effects=(),
        metrics=metrics,
        convergence=Convergence(converged=True, singular=False, optimizer=OPTIMIZER,
                                iterations=0, messages=tuple(messages)),
        residual_std_dev=metrics.sigma,
        messages=tuple(messages),
        groups=tuple(fits),
    )
    return GroupedFit(result=result, designs=designs, own_fits=own_fits)


def split_by_group(formula: Formula, data: pd.DataFrame) -> tuple[list[GroupRows], int]:
    """The rows of each level of the formula's grouping factor, levels in R's order.

    Levels of a numeric column sort as numbers, of text as strings; several grouping
    columns (``| a:b``) form levels ``"a:b"`` ordered by ``a`` then ``b``.

    Returns
    -------
    list of GroupRows, int
        The groups, and the number of rows with a missing group value (left out).
    """
    columns = formula.by_group
    if not columns:
        raise DesignError("This formula has no '| group' part to fit separate regressions by.")
    return split_rows(columns, data)


def split_rows(columns: tuple[str, ...], data: pd.DataFrame) -> tuple[list[GroupRows], int]:
    """:func:`split_by_group` by the grouping columns' names (also used on new data)."""
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise DesignError("The following formula variables are not present in the table: "
                          + ", ".join(missing))
    kinds = infer_kinds(data[list(columns)])
    ranks, labels = zip(*(_ranked_codes(data[c], kinds[c]) for c in columns), strict=True)
    code_matrix = np.column_stack(ranks)
    complete = np.all(code_matrix >= 0, axis=1)
    keys = sorted({tuple(row) for row in code_matrix[complete].tolist()})
    groups = []
    for key in keys:
        rows = np.flatnonzero(complete & np.all(code_matrix == np.asarray(key), axis=1))
        level = ":".join(labels[i][k] for i, k in enumerate(key))
        groups.append(GroupRows(level=level, rows=rows.astype(np.intp)))
    return groups, int((~complete).sum())


def by_group_residual_table(formula: Formula, data: pd.DataFrame,
                            result: FitResult) -> pd.DataFrame:
    """Fitted values and residuals of every fitted group's rows, from a stored result.

    Parameters
    ----------
    formula : Formula
        The model's parsed formula (``by_group`` set).
    data : DataFrame
        The dataset it was fitted to.
    result : FitResult
        The stored ``lm_by_group`` result (its per-group coefficients are used; nothing is
        refitted).

    Returns
    -------
    DataFrame
        A ``residual_table`` per group (standardized residuals are each group's own
        ``rstandard``), with the grouping column(s) added and rows in data order.
    """
    label = _group_label(formula)
    per_group = replace(formula, by_group=None)
    fits = {g.level: g for g in result.groups if g.metrics is not None}
    tables = []
    for group in _groups_with_fits(formula, data, fits):
        design = _shifted(build_design(per_group, data.iloc[group.rows]), group.rows)
        group_result = replace(result, fixed_effects=fits[group.level].fixed_effects)
        table = residual_table(design, fitted_values(design, group_result))
        table[label] = group.level
        tables.append(table)
    if not tables:
        raise FitError("This per-group model has no fitted group.")
    return pd.concat(tables, ignore_index=True).sort_values("row", ignore_index=True)


def _groups_with_fits(formula: Formula, data: pd.DataFrame,
                      fits: dict[str, GroupFit]) -> Iterator[GroupRows]:
    groups, _ = split_by_group(formula, data)
    return (g for g in groups if g.level in fits)


def _shifted(design: Design, positions: IntArray) -> Design:
    # build_design numbers rows within the group's frame; map them to dataset positions.
    return replace(design, rows=np.asarray(positions[design.rows], dtype=np.intp))


def _ranked_codes(series: pd.Series, kind: ColumnKind) -> tuple[IntArray, tuple[str, ...]]:
    codes, labels = factor_codes(series, kind, DesignError)
    ordered = sort_levels(list(labels), kind)
    rank = {label: i for i, label in enumerate(ordered)}
    remap = np.array([rank[label] for label in labels], dtype=np.intp)
    ranked = np.where(codes >= 0, remap[np.maximum(codes, 0)] if len(remap) else -1, -1)
    return ranked.astype(np.intp), ordered


def _group_label(formula: Formula) -> str:
    return ":".join(formula.by_group or ())


def _pooled_sd(fits: list[GroupFit], n_coef: dict[str, int]) -> tuple[float, float]:
    """lme4's ``pooledSD``: ``sqrt(sum(RSS) / sum(n - length(coef)))`` over fitted groups,
    the RSS of ``resid(el)``: the residuals in the response's scale, also of a weighted fit
    (whose own σ is of the weighted residuals)."""
    rss = sum(_raw_rss(g.metrics) for g in fits if g.metrics is not None)
    df = sum(g.metrics.n_obs - n_coef[g.level] for g in fits if g.metrics is not None)
    if df <= 0:
        raise FitError("No degrees of freedom for estimating the pooled standard deviation: "
                       "the groups have no more rows than coefficients.")
    return math.sqrt(rss / df), float(df)


def _raw_rss(metrics: Metrics) -> float:
    """Σ of the squared residuals in the response's scale (the RSS without weights)."""
    return metrics.rmse**2 * metrics.n_obs


def _pooled_group(group: GroupFit, sd: float, df: float) -> GroupFit:
    """A group's coefficient table on the pooled SD and df (lme4's ``summary(pool = TRUE)``
    and ``confint(pool = TRUE)``)."""
    if group.metrics is None:
        return group
    ratio = sd / group.metrics.sigma
    t_crit = tdist.quantile(0.5 + CONF_LEVEL / 2, df)
    fixed = []
    for fe in group.fixed_effects:
        if fe.estimate is None or fe.std_error is None:
            fixed.append(fe)
            continue
        se = fe.std_error * ratio
        t = fe.estimate / se
        fixed.append(replace(fe, std_error=se, statistic=t, df=df,
                             p_value=tdist.two_sided_p(t, df),
                             conf_low=fe.estimate - t_crit * se,
                             conf_high=fe.estimate + t_crit * se))
    return replace(group, fixed_effects=tuple(fixed))


def _pooled_metrics(fitted: list[Metrics], n_dropped: int, sigma: float,
                    df: float) -> Metrics:
    n = sum(m.n_obs for m in fitted)
    rss = sum(m.deviance for m in fitted)
    loglik = sum(m.loglik for m in fitted)
    npar = sum(m.npar for m in fitted)
    return Metrics(
        n_obs=n,
        loglik=loglik,
        aic=-2 * loglik + 2 * npar,
        bic=-2 * loglik + math.log(n) * npar,
        deviance=rss,
        sigma=sigma,
        rmse=math.sqrt(sum(_raw_rss(m) for m in fitted) / n),
        df_residual=df,
        n_dropped_missing=n_dropped,
        npar=npar,
    )
