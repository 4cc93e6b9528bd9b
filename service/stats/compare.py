"""Comparison of nested models as R's ``anova``: F tests of least squares fits
(``anova.lm``), likelihood-ratio tests when a mixed model is among them (``anova.merMod``).

:func:`anova` picks the test as R does. Only least squares fits: R's ``anova(lm1, lm2)``
(:func:`f_test`), rows in the order given, each row against the one before it, every F
against the residual mean square of the model with the fewest residual degrees of freedom:

    Df = Res.Df_{i−1} − Res.Df_i,  Sum of Sq = RSS_{i−1} − RSS_i,
    F = (Sum of Sq / Df) / (RSS_big / Res.Df_big),  p = P(F_{|Df|, Res.Df_big} > F)
    (no F when Df = 0 or F < 0, as ``stat.anova``)

A mixed model among them: lme4's ``anova.merMod`` (:func:`compare_models`). The caller
supplies, per model, its maximum-likelihood log-likelihood: lme4's ``anova`` refits REML
models by ML before comparing, and this module refuses REML numbers rather than compare
them silently. Rows are ordered by the number of parameters and each row is tested against
the one before it:

    chisq = 2 · max(0, loglik_i − loglik_{i−1}),  df = npar_i − npar_{i−1},
    p = P(χ²_df > chisq)  (none when df = 0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from scipy import stats

from service.stats.design.expr import deparse
from service.stats.errors import StatsError
from service.stats.formula.tree import Formula
from service.stats.results import FitResult


class ComparisonError(StatsError):
    """Models that cannot be compared by a likelihood-ratio test."""


@dataclass(frozen=True)
class ComparisonEntry:
    """What the comparison needs to know about one fitted model.

    ``fixed_terms`` are the fixed-effect term labels (``Exercise``, ``State``,
    ``Exercise:State``; the intercept as ``(Intercept)`` if present); ``loglik`` must be
    the maximum-likelihood log-likelihood (``method`` "ML" or "OLS").
    """

    model_id: str
    kind: str
    method: str
    dataset_id: str
    n_obs: int
    response: str
    fixed_terms: tuple[str, ...]
    npar: int
    loglik: float
    rmse: float
    # for F tests (least squares fits): the residual degrees of freedom and sum of squares
    df_residual: float | None = None
    rss: float | None = None


Test = Literal["F", "Chisq"]


@dataclass(frozen=True)
class ComparisonRow:
    """One line of the table; ``df`` and ``p_value`` are of its test (R's ``Df`` and
    ``Pr(>F)`` or ``Pr(>Chisq)``), the F test's columns None in a likelihood-ratio table."""

    model_id: str
    npar: int
    loglik: float
    aic: float
    bic: float
    deviance: float
    rmse: float
    chisq: float | None
    df: int | None
    p_value: float | None
    res_df: float | None = None
    rss: float | None = None
    sum_of_sq: float | None = None
    f_statistic: float | None = None


@dataclass(frozen=True)
class ComparisonTable:
    rows: tuple[ComparisonRow, ...]
    test: Test = "Chisq"

    def to_dict(self) -> dict[str, Any]:
        """The ``result`` object of a comparison in the API."""
        return {"test": self.test, "rows": [asdict(row) for row in self.rows]}


def comparison_entry(model_id: str, dataset_id: str, formula: Formula,
                     result: FitResult) -> ComparisonEntry:
    """The comparison's view of a stored fit.

    Parameters
    ----------
    model_id, dataset_id : str
        The model's and its dataset's ids.
    formula : Formula
        The model's parsed formula (its fixed terms and response decide nesting).
    result : FitResult
        The fit; for a mixed model fitted by REML pass the ML refit's result instead.

    Returns
    -------
    ComparisonEntry
    """
    terms = (("(Intercept)",) if formula.intercept else ()) + tuple(t.label for t in formula.fixed)
    least_squares = result.kind == "lm"
    return ComparisonEntry(
        model_id=model_id, kind=result.kind, method=result.method, dataset_id=dataset_id,
        n_obs=result.metrics.n_obs, response=deparse(formula.response), fixed_terms=terms,
        npar=result.metrics.npar, loglik=result.metrics.loglik, rmse=result.metrics.rmse,
        df_residual=result.metrics.df_residual if least_squares else None,
        # R's deviance of an lm is its residual sum of squares
        rss=result.metrics.deviance if least_squares else None,
    )


def anova(entries: Sequence[ComparisonEntry]) -> ComparisonTable:
    """R's ``anova`` of the models: :func:`f_test` when every one is a least squares fit
    (``anova.lm``), else :func:`compare_models` (``anova.merMod``, likelihood ratios)."""
    if entries and all(e.kind == "lm" for e in entries):
        return f_test(entries)
    return compare_models(entries)


def f_test(entries: Sequence[ComparisonEntry]) -> ComparisonTable:
    """R's ``anova(lm1, lm2, ...)``: F tests between consecutive least squares fits.

    Parameters
    ----------
    entries : sequence of ComparisonEntry
        Two or more ``lm`` fits (with ``df_residual`` and ``rss``) to the same rows of the
        same dataset, consecutive ones nested (either way round).

    Returns
    -------
    ComparisonTable
        ``test="F"``; rows in the order given (as R: a larger model before a smaller one
        gives negative ``df`` and ``sum_of_sq``), each with ``res_df`` and ``rss`` and, after
        the first, ``df``, ``sum_of_sq``, ``f_statistic`` and ``p_value`` against the row
        before; AIC, BIC, log-likelihood and RMSE as in the likelihood-ratio table.

    Raises
    ------
    ComparisonError
        What :func:`compare_models` refuses, a fit that is not least squares, or
        consecutive models whose fixed-effect terms are not nested.
    """
    _check_comparable(entries)
    for e in entries:
        if e.kind != "lm" or e.df_residual is None or e.rss is None:
            raise ComparisonError(f"Model {e.model_id} is not a least squares fit with a "
                                  "residual sum of squares; F tests compare lm fits only.")
    for first, second in zip(entries, entries[1:], strict=False):
        smaller, larger = sorted((first, second), key=lambda e: len(e.fixed_terms))
        _check_nested([smaller, larger])
    res_df = [float(e.df_residual or 0.0) for e in entries]
    rss = [float(e.rss or 0.0) for e in entries]
    # the model with the fewest residual df (the first such, as R's order(resdf)[1])
    big = min(range(len(entries)), key=lambda i: res_df[i])
    scale = rss[big] / res_df[big] if res_df[big] > 0 else math.nan
    rows = []
    for i, entry in enumerate(entries):
        df: int | None = None
        sum_of_sq: float | None = None
        f_value: float | None = None
        p_value: float | None = None
        if i > 0:
            df = int(round(res_df[i - 1] - res_df[i]))
            sum_of_sq = rss[i - 1] - rss[i]
            if df != 0 and math.isfinite(scale) and scale > 0:
                f_value = (sum_of_sq / df) / scale
                if f_value < 0:  # stat.anova: NA rather than a p-value of 1
                    f_value = None
                else:
                    p_value = float(stats.f.sf(abs(f_value), abs(df), res_df[big]))
        rows.append(replace(_row(entry), df=df, p_value=p_value, res_df=res_df[i],
                            rss=rss[i], sum_of_sq=sum_of_sq, f_statistic=f_value))
    return ComparisonTable(rows=tuple(rows), test="F")


def _row(entry: ComparisonEntry) -> ComparisonRow:
    return ComparisonRow(
        model_id=entry.model_id, npar=entry.npar, loglik=entry.loglik,
        aic=-2.0 * entry.loglik + 2.0 * entry.npar,
        bic=-2.0 * entry.loglik + math.log(entry.n_obs) * entry.npar,
        deviance=-2.0 * entry.loglik, rmse=entry.rmse, chisq=None, df=None, p_value=None)


def compare_models(entries: Sequence[ComparisonEntry]) -> ComparisonTable:
    """Compare nested models by likelihood-ratio tests between consecutive models.

    Parameters
    ----------
    entries : sequence of ComparisonEntry
        Two or more models fitted by ML or OLS to the same rows of the same dataset.

    Returns
    -------
    ComparisonTable
        One row per model ordered by ``npar`` (ties keep the given order), with AIC, BIC,
        deviance (−2 log-likelihood) and RMSE, and for every row after the first the
        χ² test against the row before.

    Raises
    ------
    ComparisonError
        Fewer than two models, a model id given twice, a REML or per-group fit, models
        fitted to different datasets, rows or responses, or models whose fixed-effect
        terms are not nested.
    """
    _check_comparable(entries)
    ordered = sorted(entries, key=lambda e: e.npar)
    _check_nested(ordered)
    rows: list[ComparisonRow] = []
    previous: ComparisonEntry | None = None
    for entry in ordered:
        chisq: float | None = None
        df: int | None = None
        p_value: float | None = None
        if previous is not None:
            chisq = 2.0 * max(0.0, entry.loglik - previous.loglik)
            df = entry.npar - previous.npar
            p_value = float(stats.chi2.sf(chisq, df)) if df > 0 else None
        rows.append(replace(_row(entry), chisq=chisq, df=df, p_value=p_value))
        previous = entry
    return ComparisonTable(rows=tuple(rows))


def _check_comparable(entries: Sequence[ComparisonEntry]) -> None:
    if len(entries) < 2:
        raise ComparisonError("A comparison needs at least two models.")
    ids = [e.model_id for e in entries]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ComparisonError(f"Each model can appear once; repeated: {', '.join(repeated)}.")
    for e in entries:
        if e.kind == "lm_by_group":
            raise ComparisonError(
                f"Model {e.model_id} is a set of per-group regressions (lm_by_group), which "
                "has no single likelihood to test; compare lm and lmm models."
            )
        if e.method not in ("ML", "OLS"):
            raise ComparisonError(
                f"Model {e.model_id} was fitted by {e.method}; likelihood-ratio tests need "
                "maximum-likelihood fits (refit REML models by ML first, as lme4's anova does)."
            )
    _require_same(entries, "dataset_id", "were fitted to different datasets")
    _require_same(entries, "n_obs", "were fitted to different numbers of rows (missing "
                  "values dropped differently?), so their likelihoods are not comparable")
    _require_same(entries, "response", "have different responses")


def _require_same(entries: Sequence[ComparisonEntry], field: str, problem: str) -> None:
    values = {getattr(e, field) for e in entries}
    if len(values) > 1:
        listing = "; ".join(f"{e.model_id}: {getattr(e, field)}" for e in entries)
        raise ComparisonError(f"The models {problem} ({field} {listing}).")


def _check_nested(ordered: Sequence[ComparisonEntry]) -> None:
    # A likelihood-ratio test needs each smaller model to be a special case of the next;
    # for the fixed effects that means its terms are a subset of the larger model's.
    for smaller, larger in zip(ordered, ordered[1:], strict=False):
        extra = [t for t in smaller.fixed_terms if t not in set(larger.fixed_terms)]
        if extra:
            raise ComparisonError(
                f"The models are not nested: {smaller.model_id} ({smaller.npar} parameters) "
                f"has the fixed-effect terms {', '.join(extra)} that {larger.model_id} "
                f"({larger.npar} parameters) lacks, so a likelihood-ratio test between them "
                "is not valid. Compare them by AIC or BIC instead, or add the terms to the "
                "larger model."
            )
