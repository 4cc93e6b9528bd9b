"""Inference on a fitted model from its stored result alone: Wald and t intervals (R's
``confint``) and the anova tables of a least squares fit (R's ``anova.lm``, ``car::Anova``).

Everything here reads the result document (estimates, standard errors, ``vcov``, residual
sum of squares and degrees of freedom) and, for anova tables, the design encoder (which
columns belong to which term); no data and no refit, so it is instant and can run in a
request. Likelihood profiles and the bootstrap, which refit, are not here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from service.stats.design.encoder import DesignEncoder
from service.stats.design.terms import INTERCEPT, TermSpec, Value, term_block
from service.stats.errors import StatsError
from service.stats.results import FitResult, RandomEffectsTerm

RESIDUALS = "Residuals"


class InferenceError(StatsError):
    """The model cannot give what was asked (wrong kind of model, a missing ingredient)."""


@dataclass(frozen=True)
class IntervalRow:
    parm: str
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class Intervals:
    """R's ``confint`` table: one row per parameter, bounds at ``(1 ∓ level) / 2``."""

    method: str
    level: float
    rows: tuple[IntervalRow, ...]


@dataclass(frozen=True)
class AnovaRow:
    """One row; None is R's NA (a residual row's test, a mixed model's untestable term)."""

    term: str
    sum_sq: float | None
    mean_sq: float | None
    num_df: float | None
    den_df: float | None
    f_value: float | None
    p_value: float | None


@dataclass(frozen=True)
class AnovaTable:
    type: int
    rows: tuple[AnovaRow, ...]
    ddf: str | None = None  # a mixed model's denominator df method


def wald_intervals(result: FitResult, level: float) -> Intervals:
    """Wald intervals of a fit: R's ``confint.lm`` for an lm, lme4's
    ``confint(fit, method = "Wald", oldNames = FALSE)`` for a mixed model.

    An lm's intervals are ``estimate ± t_{df, (1 + level)/2} · SE`` on the residual degrees
    of freedom, with NA rows for aliased coefficients. A mixed model's are
    ``estimate ± z_{(1 + level)/2} · SE``, after a row of NA per variance parameter (lme4's
    Wald method has none for them), named as lme4 names them: ``sd_<term>|<group>``,
    ``cor_<term2>.<term1>|<group>`` (the lower triangle column by column), then ``sigma``;
    lme4 drops aliased columns from a mixed model, so they have no row.

    Raises
    ------
    InferenceError
        For per-group fits, or a level outside (0, 1).
    """
    if not 0.0 < level < 1.0:
        raise InferenceError(f"level must be between 0 and 1 (exclusive), not {level}")
    if result.kind == "lm":
        quantile = float(stats.t.ppf((1.0 + level) / 2.0, result.metrics.df_residual))
        fixed = list(result.fixed_effects)
        rows: list[IntervalRow] = []
    elif result.kind == "lmm":
        quantile = float(stats.norm.ppf((1.0 + level) / 2.0))
        fixed = [fe for fe in result.fixed_effects if not fe.aliased]
        rows = [IntervalRow(name, None, None)
                for name in variance_parameter_names(result.random_effects)]
    else:
        raise InferenceError("Intervals of per-group fits (lmList) are not available: "
                             "each group's coefficient table has its own 95% intervals.")
    for fe in fixed:
        if fe.estimate is None or fe.std_error is None:
            rows.append(IntervalRow(fe.term, None, None))
            continue
        half = quantile * fe.std_error
        rows.append(IntervalRow(fe.term, fe.estimate - half, fe.estimate + half))
    return Intervals(method="Wald", level=level, rows=tuple(rows))


def variance_parameter_names(terms: Sequence[RandomEffectsTerm]) -> list[str]:
    """lme4's names of the variance parameters on the sd/cor scale (``oldNames = FALSE``),
    in its order: per term, the lower triangle of its sd/cor matrix column by column, then
    ``sigma``."""
    names: list[str] = []
    seen: set[str] = set()
    for term in terms:
        group = _grouping_factor(term.group, seen)
        seen.add(group)
        labels = term.terms
        for j, first in enumerate(labels):
            names.append(f"sd_{first}|{group}")
            names.extend(f"cor_{second}.{first}|{group}" for second in labels[j + 1:])
    names.append("sigma")
    return names


def _grouping_factor(name: str, seen: set[str]) -> str:
    """The factor's own name: VarCorr calls a second term of Subject ``Subject.1``, while
    confint names it by the factor, ``Subject``."""
    match = re.fullmatch(r"(.*)\.\d+", name)
    if match and match.group(1) in seen:
        return match.group(1)
    return name


def term_columns(encoder: DesignEncoder) -> list[tuple[str, list[str]]]:
    """Each fixed term's label (R's ``term.labels``) with the names of its model-matrix
    columns (R's ``assign``), the intercept first when the model has one."""
    out: list[tuple[str, list[str]]] = [(INTERCEPT, [INTERCEPT])] if encoder.intercept else []
    for term in encoder.fixed:
        values: dict[str, Value] = {}
        for label in term.variables:
            variable = encoder.variables[label]
            values[label] = (np.zeros(0, dtype=np.intp) if variable.categorical
                             else np.zeros((0, len(variable.suffixes))))
        _, names = term_block(term, encoder.variables, values, 0)
        out.append((_label(term), names))
    return out


def _label(term: TermSpec) -> str:
    return ":".join(term.variables)


def lm_anova(result: FitResult, encoder: DesignEncoder, type: int) -> AnovaTable:
    """The anova table of a least squares fit, from its coefficients and ``vcov``.

    Type 1 is R's ``anova.lm`` (sequential sums of squares: the squared QR effects of each
    term's columns, ``R β̂`` with ``RᵀR = XᵀX = σ̂² vcov⁻¹``). Types 2 and 3 are
    ``car::Anova``'s: each term's sum of squares is that of a linear hypothesis ``L β = 0``,
    ``(Lβ̂)ᵀ (L vcov Lᵀ)⁻¹ (Lβ̂) σ̂²``; type 3 tests the term's coefficients (and lists the
    intercept), type 2 the part of them orthogonal, in vcov's inner product, to the terms
    that contain it (car's ``ConjComp``), which is the sum of squares of the term after
    every term that does not contain it. The last row is R's ``Residuals``.

    Raises
    ------
    InferenceError
        Not an lm, no stored ``vcov``, aliased coefficients, or a type other than 1-3.
    """
    if type not in (1, 2, 3):
        raise InferenceError(f"The anova type must be 1, 2 or 3, not {type}")
    if result.kind != "lm":
        raise InferenceError("anova tables of this kind are for least squares fits")
    if result.vcov is None:
        raise InferenceError("The model was stored before its covariance matrix was; fit "
                             "it again to get an anova table.")
    if any(fe.aliased for fe in result.fixed_effects):
        raise InferenceError("anova tables of models with aliased coefficients are not yet "
                             "available")
    names = list(result.vcov.terms)
    index = {name: i for i, name in enumerate(names)}
    beta = np.array([fe.estimate for fe in result.fixed_effects], dtype=np.float64)
    vcov = result.vcov.array()
    df_res = result.metrics.df_residual
    rss = result.metrics.deviance
    sigma2 = rss / df_res
    terms = [(label, [index[c] for c in columns]) for label, columns in term_columns(encoder)]
    variables = {_label(term): frozenset(term.variables) for term in encoder.fixed}
    if type == 1:
        effects = np.linalg.cholesky(sigma2 * np.linalg.inv(vcov)).T @ beta
        sums = [(label, float(np.sum(effects[cols] ** 2)), len(cols))
                for label, cols in terms if label != INTERCEPT]
    else:
        sums = []
        for label, cols in terms:
            if type == 2 and label == INTERCEPT:
                continue
            hypothesis = (np.eye(len(names))[cols] if type == 3
                          else _type2_hypothesis(label, cols, terms, variables, vcov))
            sums.append((label, _hypothesis_ss(hypothesis, beta, vcov, sigma2),
                         hypothesis.shape[0]))
    rows = []
    for label, ss, df in sums:
        f_value = ss / df / sigma2
        rows.append(AnovaRow(term=label, sum_sq=ss, mean_sq=ss / df, num_df=float(df),
                             den_df=df_res, f_value=f_value,
                             p_value=float(stats.f.sf(f_value, df, df_res))))
    rows.append(AnovaRow(term=RESIDUALS, sum_sq=rss, mean_sq=sigma2, num_df=df_res,
                         den_df=None, f_value=None, p_value=None))
    return AnovaTable(type=type, rows=tuple(rows))


def _hypothesis_ss(hypothesis: np.ndarray, beta: np.ndarray, vcov: np.ndarray,
                   sigma2: float) -> float:
    estimate = hypothesis @ beta
    middle = hypothesis @ vcov @ hypothesis.T
    return float(estimate @ np.linalg.solve(middle, estimate) * sigma2)


def _type2_hypothesis(label: str, cols: list[int], terms: list[tuple[str, list[int]]],
                      variables: dict[str, frozenset[str]], vcov: np.ndarray) -> np.ndarray:
    """car's type II hypothesis for a term: the term's coefficients made orthogonal (in
    vcov's inner product) to those of the terms that contain it."""
    relatives = [c for other, other_cols in terms
                 if other in variables and variables[label] < variables[other]
                 for c in other_cols]
    identity = np.eye(vcov.shape[0])
    if not relatives:
        return identity[cols]
    x = identity[relatives].T           # p × r1
    z = identity[relatives + cols].T    # p × r2
    q, r = np.linalg.qr(z.T @ vcov @ x, mode="complete")
    rank = int(np.sum(np.abs(np.diag(r)) > 1e-10 * np.abs(r).max()))
    complement = z @ q[:, rank:]
    basis = complement.T
    return basis[~np.all(np.abs(basis) < 1e-12, axis=1)]
