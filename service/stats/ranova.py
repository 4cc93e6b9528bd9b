"""lmerTest's ``ranova``: each random-effects term reduced, the reduced model refitted and
compared with the full one by a likelihood ratio test.

lmerTest's reduction of a term ``(lhs | g)`` (``get_newforms``): when ``lhs`` has terms
besides the intercept, each of them that no other term of ``lhs`` contains is dropped in
turn (``drop.scope``), leaving ``(1 | g)`` when it was the only one (so ``(0 + x | g)``
becomes ``(1 | g)``); a term with nothing but an intercept is removed. A model left without
random effects is fitted by least squares. Fits are compared on the full model's scale:
REML log-likelihoods for a REML fit (``logLik.lm(REML = TRUE)`` for a least squares
refit), ML ones for an ML fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from service.stats.design import build_design
from service.stats.design.types import Design
from service.stats.formula.bar_labels import bar_labels
from service.stats.formula.tree import Formula, RandomTerm, Term
from service.stats.inference import InferenceError
from service.stats.lmm import fit_lmm
from service.stats.results import FitResult
from service.stats.threads import single_threaded_blas

NONE = "<none>"


@dataclass(frozen=True)
class RanovaRow:
    """One model of the table: R's ``npar``, ``logLik``, ``AIC``, and for a reduced model
    its test against the full one (``LRT``, ``Df``, ``Pr(>Chisq)``; None in ``<none>``)."""

    term: str
    npar: int
    loglik: float
    aic: float
    lrt: float | None
    df: int | None
    p_value: float | None


@dataclass(frozen=True)
class RanovaTable:
    rows: tuple[RanovaRow, ...]


@dataclass(frozen=True)
class Reduction:
    """A reduced model: its row name and its random-effects terms."""

    name: str
    random: tuple[RandomTerm, ...]


def _droppable(terms: tuple[Term, ...]) -> list[Term]:
    """R's ``drop.scope``: the terms no other term contains."""
    return [t for t in terms
            if not any(set(t.factors) < set(u.factors) for u in terms if u is not t)]


def reductions(formula: Formula, labels: tuple[str, ...]) -> list[Reduction]:
    """lmerTest's reduced models, in its order: per random-effects term (formula order),
    its reductions.

    Parameters
    ----------
    formula
        The full model.
    labels
        R's text of each random-effects term (``bar_labels``), naming the rows.
    """
    out = []
    for i, (term, label) in enumerate(zip(formula.random, labels, strict=True)):
        before, after = formula.random[:i], formula.random[i + 1:]
        scope = _droppable(term.terms)
        if not scope:
            out.append(Reduction(f"({label})", before + after))
            continue
        for dropped in scope:
            rest = tuple(t for t in term.terms if t is not dropped)
            reduced = replace(term, intercept=term.intercept or not rest, terms=rest)
            # R's update(. ~ . - (term) + (reduced)) appends the reduced term, and terms()
            # drops it again if the model already has it: (1 | g) + (0 + x | g) reduced
            # to (1 | g) + (1 | g) is the model (1 | g)
            random = before + after
            if reduced not in random:
                random += (reduced,)
            out.append(Reduction(f"{dropped.label} in ({label})", random))
    return out


def _least_squares_loglik(design: Design, reml: bool) -> tuple[float, int]:
    """R's ``logLik.lm(fit, REML = reml)`` and its df (p + 1)."""
    assert design.y is not None
    x, y = design.X, design.y
    n, p = x.shape
    q, r = np.linalg.qr(x)
    residual = y - q @ (q.T @ y)
    rss = float(residual @ residual)
    dof = n - p if reml else n
    value = 0.5 * (design.log_det_weights
                   - dof * (math.log(2 * math.pi) + 1.0 - math.log(dof) + math.log(rss)))
    if reml:
        value -= float(np.sum(np.log(np.abs(np.diag(r)))))
    return value, p + 1


def _refit(reduced: Formula, data: pd.DataFrame, method: str, n_obs: int,
           ) -> tuple[float, int]:
    design = build_design(reduced, data)
    if design.n_obs != n_obs:
        raise InferenceError(
            f"Reducing the random effects changes the rows used ({n_obs} to "
            f"{design.n_obs}: a column left out has missing values), so the models cannot be "
            "compared; remove the rows with missing values and fit again (lmerTest: "
            "'number of rows in use has changed').")
    if not reduced.random:
        return _least_squares_loglik(design, reml=method == "REML")
    fit = fit_lmm(design, "REML" if method == "REML" else "ML")
    return fit.metrics.loglik, fit.metrics.npar


def ranova(formula: Formula, data: pd.DataFrame, result: FitResult) -> RanovaTable:
    """lmerTest 3.1-3's ``ranova(fit)`` of a stored mixed model.

    Parameters
    ----------
    formula
        The parsed formula of the full model.
    data
        Its dataset (the reduced models are fitted to the same rows).
    result
        The stored fit (its log-likelihood and parameter count are the ``<none>`` row).

    Returns
    -------
    RanovaTable
        ``<none>`` first, then one row per reduction, named as lmerTest names them.

    Raises
    ------
    InferenceError
        Not a mixed model, or a reduction that changes the rows used.
    """
    if result.kind != "lmm":
        raise InferenceError("ranova is for mixed models: a model without random effects has "
                             "none to reduce")
    labels = bar_labels(formula.text)
    full_loglik, full_npar = result.metrics.loglik, result.metrics.npar
    rows = [RanovaRow(NONE, full_npar, full_loglik, -2.0 * full_loglik + 2.0 * full_npar,
                      None, None, None)]
    with single_threaded_blas():
        for reduction in reductions(formula, labels):
            loglik, npar = _refit(replace(formula, random=reduction.random), data,
                                  result.method, result.metrics.n_obs)
            lrt = 2.0 * (full_loglik - loglik)
            df = full_npar - npar
            rows.append(RanovaRow(
                reduction.name, npar, loglik, -2.0 * loglik + 2.0 * npar, lrt, df,
                float(stats.chi2.sf(lrt, df)) if df > 0 else None))
    return RanovaTable(rows=tuple(rows))
