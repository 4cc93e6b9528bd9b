"""The variance parameters on lme4's sd/cor scale (its ``Cv_to_Sv`` and ``Sv_to_Cv``).

Profiles and bootstrap intervals are reported on this scale: per random-effects term the
lower triangle of its sd/cor matrix column by column (standard deviations on the
diagonal, correlations below it: the layout of that term's entries in θ), then σ. The
covariance of a term's effects is σ² T Tᵀ = D C D (D the standard deviations, C the
correlations).
"""

from __future__ import annotations

import numpy as np

from service.stats.design.types import FloatArray
from service.stats.lmm.standardize import lower_factor
from service.stats.lmm.structure import TermLayout


def sdcor_of_covariance(covariance: FloatArray, term: TermLayout) -> FloatArray:
    """A term's sd/cor values (θ's layout) from the covariance of its effects.

    A zero standard deviation has no correlation: 0, as lme4's ``cov2sdcor`` gives it.
    """
    sd = np.sqrt(np.maximum(np.diagonal(covariance), 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        table = covariance / np.outer(sd, sd)
    table = np.where(np.isfinite(table), table, 0.0)
    np.fill_diagonal(table, sd)
    return np.asarray(table[term.lower_rows, term.lower_cols])


def sdcor_factor(values: FloatArray, term: TermLayout) -> FloatArray | None:
    """A q × q factor F with F Fᵀ = D C D, from a term's sd/cor values (θ's layout).

    None when the correlations are not those of any covariance matrix (possible only for
    three or more effects; lme4 would take a pivoted Cholesky factor of a matrix that is
    not one).
    """
    table = np.zeros((term.q, term.q))
    table[term.lower_rows, term.lower_cols] = values
    sd = np.diagonal(table).copy()
    correlation = np.tril(table, -1)
    correlation = correlation + correlation.T + np.eye(term.q)
    try:
        chol = np.linalg.cholesky(correlation)
    except np.linalg.LinAlgError:
        # |cor| = 1 or a singular set: a factor of the positive semi-definite matrix
        eigenvalues, vectors = np.linalg.eigh(correlation)
        if eigenvalues.min() < -1e-12:
            return None
        chol = lower_factor(vectors * np.sqrt(np.maximum(eigenvalues, 0.0)))
    return np.asarray(sd[:, None] * chol)
