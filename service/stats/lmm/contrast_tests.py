"""F tests of ``L β = 0`` in a mixed model, as lmerTest's ``contestMD`` makes them.

Satterthwaite: ``L vcov Lᵀ = P D Pᵀ`` (eigen-decomposition, rank q from the eigenvalues
above √ε · the largest); F = Σ_m (p_mᵀLβ̂)² / d_m / q, each direction with its own
Satterthwaite df ν_m = 2 d_m² / (g_mᵀ A g_m), combined into the F's df as lmerTest's
``get_Fstat_ddf`` does. One direction is a t test, F = t².

Kenward-Roger: pbkrtest's ``KRmodcomp`` with the adjusted covariance of
``service.stats.lmm.kenward_roger``: the Wald statistic on the adjusted covariance, its
df and the scaling of F.

Sums of squares are lmerTest's: mean square = the unscaled F · σ̂², sum = q · mean square.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from service.stats.design.types import FloatArray
from service.stats.lmm.derivatives import VarianceDerivatives, variance_parameter_covariance
from service.stats.lmm.kenward_roger import AdjustedCovariance

_RANK_EPS = float(np.sqrt(np.finfo(np.float64).eps))
_EQUAL_DF = 1e-8


@dataclass(frozen=True)
class FTest:
    sum_sq: float
    mean_sq: float
    num_df: int
    den_df: float
    f_value: float
    p_value: float


def _f_test(f_unscaled: float, q: int, den_df: float, sigma: float,
            scale: float = 1.0) -> FTest:
    mean_sq = float(f_unscaled * sigma**2)
    f_value = float(f_unscaled * scale)
    return FTest(sum_sq=mean_sq * q, mean_sq=mean_sq, num_df=q, den_df=float(den_df),
                 f_value=f_value, p_value=float(stats.f.sf(f_value, q, den_df)))


def _contrast_df(derivs: VarianceDerivatives, a: FloatArray, row: FloatArray) -> float:
    """Satterthwaite's df of one contrast: 2 (lᵀCl)² / (gᵀ A g), g_i = lᵀ ∂C/∂φ_i l."""
    variance = float(row @ derivs.covariance @ row)
    gradient = np.einsum("j,ijk,k->i", row, derivs.cov_gradient, row)
    denominator = float(gradient @ a @ gradient)
    return 2.0 * variance**2 / denominator if denominator > 0 else np.inf


def combined_df(nu: FloatArray) -> float:
    """lmerTest's ``get_Fstat_ddf``: the df of an F that sums q squared t statistics
    with ν_m df each (the mean when they are all equal; 2 if any ν_m ≤ 2)."""
    if len(nu) == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < _EQUAL_DF):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    expectation = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * expectation / (expectation - len(nu))


def satterthwaite_test(contrast: FloatArray, beta: FloatArray, derivs: VarianceDerivatives,
                       sigma: float) -> FTest | None:
    """lmerTest's ``contestMD`` with Satterthwaite's df; None for a matrix of rank 0.

    Parameters
    ----------
    contrast
        L, one hypothesis per row (columns: the fixed effects).
    beta
        β̂.
    derivs
        The covariance of β̂ and its derivatives in the variance parameters, and the
        Hessian of the deviance, at the optimum (user units for the covariance).
    sigma
        σ̂.
    """
    a = variance_parameter_covariance(derivs)
    if contrast.shape[0] == 1:
        row = contrast[0]
        estimate = float(row @ beta)
        variance = float(row @ derivs.covariance @ row)
        return _f_test(estimate**2 / variance, 1, _contrast_df(derivs, a, row), sigma)
    values, vectors = np.linalg.eigh(contrast @ derivs.covariance @ contrast.T)
    values, vectors = values[::-1], vectors[:, ::-1]  # decreasing, as R's eigen
    positive = values > max(_RANK_EPS * values[0], 0.0)
    q = int(positive.sum())
    if q == 0:
        return None
    directions = vectors[:, :q].T @ contrast
    d = values[:q]
    t2 = (directions @ beta) ** 2 / d
    nu = np.array([_contrast_df(derivs, a, direction) for direction in directions])
    if q == 1:
        return _f_test(float(t2[0]), 1, float(nu[0]), sigma)
    return _f_test(float(t2.sum() / q), q, combined_df(nu), sigma)


def _full_rank(contrast: FloatArray) -> FloatArray:
    """pbkrtest's ``force_full_rank``: an orthonormal basis of L's row space if L has
    dependent rows, else L."""
    rank = int(np.linalg.matrix_rank(contrast))
    if rank == contrast.shape[0]:
        return contrast
    q, _ = np.linalg.qr(contrast.T)
    return np.asarray(q[:, :rank].T)


def _div_zero(x: float, y: float, tol: float = 1e-14) -> float:
    return 1.0 if abs(x) < tol and abs(y) < tol else x / y


def kenward_roger_test(contrast: FloatArray, beta: FloatArray, adjusted: AdjustedCovariance,
                       sigma: float) -> FTest:
    """pbkrtest's ``KRmodcomp`` of ``L β = 0`` as lmerTest reports it.

    Parameters
    ----------
    contrast
        L (made full rank first, as pbkrtest does).
    beta
        β̂ of the REML fit.
    adjusted
        The Kenward-Roger pieces at the REML fit.
    sigma
        σ̂.
    """
    lmat = _full_rank(contrast)
    phi = adjusted.vcov
    q = int(np.linalg.matrix_rank(lmat))
    theta = lmat.T @ np.linalg.solve(lmat @ phi @ lmat.T, lmat)
    theta_phi = theta @ phi
    us = [theta_phi @ p @ phi for p in adjusted.p]
    a1 = a2 = 0.0
    w = adjusted.w
    for i in range(len(us)):
        for j in range(i, len(us)):
            e = 1.0 if i == j else 2.0
            a1 += e * w[i, j] * float(np.trace(us[i])) * float(np.trace(us[j]))
            a2 += e * w[i, j] * float(np.sum(us[i] * us[j].T))
    b = (a1 + 6.0 * a2) / (2.0 * q)
    g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
    denominator = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / denominator, (q - g) / denominator, (q + 2 - g) / denominator
    v0 = 1 + c1 * b
    v0 = 0.0 if abs(v0) < 1e-10 else v0
    v1 = 1 - c2 * b
    v2 = 1 - c3 * b
    rho = _div_zero(1 - a2 / q, v1) ** 2 * v0 / v2 / q
    df2 = 4 + (q + 2) / (q * rho - 1)
    scaling = 1.0 if abs(df2 - 2) < 0.01 else df2 * (1 - a2 / q) / (df2 - 2)
    estimate = lmat @ beta
    wald = float(estimate @ np.linalg.solve(lmat @ adjusted.adjusted @ lmat.T, estimate))
    return _f_test(wald / q, q, df2, sigma, scale=scaling)
