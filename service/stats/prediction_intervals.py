"""Standard errors and intervals of predictions: R's ``predict.lm(interval = ...)`` for
least squares fits, and its analytic analogue for mixed models.

What a fit stores for this (``uncertainty_state``) is read once into ``Uncertainty`` when
a cached predictor is first asked for intervals, so a prediction without them never pays.

For a mixed model the variance of row r's prediction is built from parts that are fixed
at the estimates of the variance parameters (their own uncertainty is ignored):

- ``x' V x``, V = vcov(β̂): always;
- for each random term whose effects the prediction includes (conditioned on) and whose
  level in row r was seen in fitting: ``z' C_l z``, C_l that level's conditional
  covariance (lme4's ``condVar``); the covariance of β̂ with the modes is ignored;

``se_fit`` is the square root of their sum and the confidence interval is
``fit ± z_{(1+level)/2} se_fit``. The prediction interval (a new observation) adds σ² and,
for each term not conditioned on (left out by ``random_effects``, or a level not seen in
fitting), ``z' Σ z``, Σ = the term's VarCorr covariance: a new level's effects are as
uncertain as the population of levels. A least squares fit has no random terms, and uses
the t quantile on its residual degrees of freedom, exactly as ``predict.lm``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from service.stats.design.encoder import DesignEncoder, RandomSpec, evaluate_variables
from service.stats.design.expr import expr_columns
from service.stats.design.terms import model_columns
from service.stats.design.types import FloatArray, IntArray
from service.stats.errors import PredictionError
from service.stats.results import FitResult

Interval = Literal["confidence", "prediction"]


def uncertainty_state(result: FitResult) -> dict[str, Any] | None:
    """The JSON part of a prediction state that intervals need: vcov of the estimable
    coefficients (in the design's order), σ̂, the residual df of an lm (None: a mixed
    model, whose intervals use the normal quantile), and per random term its VarCorr
    covariance and its levels' conditional covariances. None without a vcov.

    Parameters
    ----------
    result
        A fit of an lm or a mixed model, before aliased rows are added.
    """
    if result.vcov is None:
        return None
    lmm = result.kind == "lmm"
    return {
        "vcov": [list(row) for row in result.vcov.matrix],
        "sigma": float(result.residual_std_dev),
        "df": None if lmm else float(result.metrics.df_residual),
        "random_effects": [{"covariance": [list(row) for row in term.covariance],
                            "cond_cov": [[list(row) for row in level]
                                         for level in modes.cond_cov]}
                           for term, modes in zip(result.random_effects,
                                                  result.conditional_modes, strict=True)],
    }


@dataclass(frozen=True, eq=False)
class TermUncertainty:
    covariance: FloatArray  # q x q, VarCorr's
    cond_cov: FloatArray  # levels x q x q


@dataclass(frozen=True, eq=False)
class Uncertainty:
    """``uncertainty_state`` decoded into arrays; ``terms`` aligned with the prediction
    state's ``random_effects``."""

    vcov: FloatArray
    sigma: float
    df: float | None
    terms: tuple[TermUncertainty, ...]

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> Uncertainty | None:
        if not state:
            return None
        vcov = np.array([[np.nan if v is None else v for v in row] for row in state["vcov"]],
                        dtype=np.float64)
        terms = []
        for entry in state.get("random_effects", []):
            covariance = np.asarray(entry["covariance"], dtype=np.float64)
            q = covariance.shape[0]
            terms.append(TermUncertainty(
                covariance=covariance,
                cond_cov=np.asarray(entry["cond_cov"], dtype=np.float64).reshape(-1, q, q)))
        return cls(vcov=vcov.reshape(len(state["vcov"]), -1), sigma=float(state["sigma"]),
                   df=None if state.get("df") is None else float(state["df"]),
                   terms=tuple(terms))


@dataclass(frozen=True, eq=False)
class Conditioned:
    """A random term the prediction includes: its covariates, and for the rows whose
    level was seen (``seen``) the index of that level's conditional covariance."""

    covariates: FloatArray
    seen: np.ndarray  # bool per row
    level_rows: IntArray  # per seen row
    term: TermUncertainty


@dataclass(frozen=True, eq=False)
class Unconditioned:
    """Rows (``rows``, a bool mask) whose effects of a term the prediction leaves at 0."""

    covariates: FloatArray
    rows: np.ndarray
    term: TermUncertainty


@dataclass(frozen=True)
class IntervalTable:
    """Per row: the prediction, its standard error and the interval's bounds."""

    fit: FloatArray
    se_fit: FloatArray
    lower: FloatArray
    upper: FloatArray


def interval_table(fit: FloatArray, X: FloatArray, uncertainty: Uncertainty,
                   conditioned: Sequence[Conditioned], unconditioned: Sequence[Unconditioned],
                   interval: Interval, level: float) -> IntervalTable:
    """The standard errors and intervals of predictions ``fit`` (module docstring).

    Parameters
    ----------
    fit
        The predictions.
    X
        Their fixed-effects rows (the estimable columns, vcov's order).
    uncertainty
        The fit's.
    conditioned, unconditioned
        The random terms' parts (none for an lm).
    interval
        ``"confidence"`` or ``"prediction"``.
    level
        The coverage, in (0, 1).
    """
    variance = np.einsum("ij,jk,ik->i", X, uncertainty.vcov, X)
    for part in conditioned:
        z = part.covariates[part.seen]
        variance[part.seen] += np.einsum("ia,iab,ib->i", z, part.term.cond_cov[part.level_rows],
                                         z)
    se_fit = np.sqrt(np.maximum(variance, 0.0))
    if interval == "prediction":
        variance = variance + uncertainty.sigma ** 2
        for other in unconditioned:
            z = other.covariates[other.rows]
            variance[other.rows] += np.einsum("ia,ab,ib->i", z, other.term.covariance, z)
    tail = (1.0 + level) / 2.0
    quantile = float(stats.norm.ppf(tail) if uncertainty.df is None
                     else stats.t.ppf(tail, uncertainty.df))
    half = quantile * np.sqrt(np.maximum(variance, 0.0))
    return IntervalTable(fit=fit, se_fit=se_fit, lower=fit - half, upper=fit + half)


def term_covariates(encoder: DesignEncoder, spec: RandomSpec, frame: pd.DataFrame) -> FloatArray:
    """The n × q covariates of a random term for rows that may lack its grouping columns
    (a term the prediction leaves out still widens a prediction interval)."""
    labels = list(dict.fromkeys(v for term in spec.terms for v in term.variables))
    columns = [c for label in labels
               for c in ([encoder.variables[label].column] if encoder.variables[label].categorical
                         else expr_columns(encoder.exprs[label]))]
    absent = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if absent:
        raise PredictionError(
            f"A prediction interval needs the covariates of the random term "
            f"({' + '.join(spec.names)} | {spec.group_label}) even where its effects are "
            f"left out (a new level's effects widen it): column(s) {', '.join(absent)} "
            "are not in the new data")
    values = evaluate_variables(encoder, frame, labels, params=dict(encoder.params),
                                error=PredictionError, learn=False)
    covariates, _ = model_columns(spec.intercept, spec.terms, encoder.variables, values,
                                  len(frame))
    return covariates
