"""Numerical derivatives at the optimum, for lme4's convergence check and lmerTest's
Satterthwaite degrees of freedom.

lmerTest differentiates the deviance as a function of φ = (θ, σ),

    dev(θ, σ) = a(θ) + r²(θ) / σ² + n' log(2π σ²),

with a = log|L|² (+ log|R_X|² for REML) and n' = n (ML) or n − p (REML), and the
covariance of β̂, C(θ, σ) = σ² C₁(θ) with C₁ = R_X⁻¹R_X⁻ᵀ. The σ-derivatives are exact
here; only a, r² and C₁ are differenced in θ, by central differences at two steps, h and
h/2, combined by Richardson's extrapolation (as numDeriv, which lmerTest uses, does with
more steps).

The differences are taken in the standardized coordinates of ``standardize`` (y and the
covariates centred and scaled), where θ, σ and the pieces are of order one whatever the
data's units: the step sizes below then give the same relative accuracy on every data set
(df within 1e-8 of lmerTest's on most reference cases, 3e-6 on all but one that lmerTest
itself gets wrong: tests/stats/test_lmm_anova.py). Plain central differences at a step of
1e-4 were round-off bound (an error ~1e-16 |dev| / h²): their df moved by 2e-5 with
numpy's and scipy's versions, past lmerTest's own accuracy.
In the user's units, round-off in r² was amplified by 1/step² and the df of a response
near 10⁴σ were off by a factor 12.
The profiled objective's gradient and Hessian (lme4's check) follow from the same
numbers: at σ̂ the envelope theorem gives the gradient and a Schur complement the Hessian.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.stats.design.types import FloatArray
from service.stats.lmm.factor import update_factor
from service.stats.lmm.objective import Method, residual_dof
from service.stats.lmm.structure import CrossProducts

# Extrapolated central differences: truncation error ~ step⁴, round-off ~ 1e-16 |dev| /
# step²; a step 30 times the plain differences' best balances the two
_RELATIVE_STEP = 3e-3
_ABSOLUTE_STEP = 3e-4


@dataclass(frozen=True)
class VarianceDerivatives:
    """Derivatives at φ̂ = (θ̂, σ̂).

    ``hessian`` is the (k + 1) × (k + 1) Hessian of dev(θ, σ); ``cov_gradient[i]`` is
    ∂C/∂φ_i (p × p); ``profiled_gradient``/``profiled_hessian`` are those of the profiled
    objective in θ alone.
    """

    hessian: FloatArray
    cov_gradient: FloatArray
    covariance: FloatArray
    profiled_gradient: FloatArray
    profiled_hessian: FloatArray


def _pieces(cp: CrossProducts, theta: FloatArray,
            with_cov: bool) -> tuple[FloatArray, FloatArray | None]:
    """(log|L|², log|R_X|², r²) at θ, and C₁ = R_X⁻¹R_X⁻ᵀ if asked for."""
    factor = update_factor(cp, theta)
    cov = None
    if with_cov:
        cov = np.zeros((0, 0))
        if cp.n_fixed:
            rx_inv = np.linalg.inv(factor.r_x())  # p × p: numpy's gufunc is cheapest
            cov = rx_inv @ rx_inv.T
    return np.array([factor.logdet_l, factor.logdet_rx, factor.penalized_rss]), cov


def _differences(cp: CrossProducts, theta: FloatArray, center: FloatArray,
                 steps: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Central-difference gradient (3,k), Hessian (3,k,k) of the pieces and ∂C₁ (k,p,p)."""
    k = len(theta)
    grad = np.zeros((3, k))
    hess = np.zeros((3, k, k))
    cov_grad = np.zeros((k, cp.n_fixed, cp.n_fixed))
    plus = np.zeros((k, 3))
    minus = np.zeros((k, 3))
    for i in range(k):
        e = np.zeros(k)
        e[i] = steps[i]
        plus[i], cov_plus = _pieces(cp, theta + e, with_cov=True)
        minus[i], cov_minus = _pieces(cp, theta - e, with_cov=True)
        assert cov_plus is not None and cov_minus is not None
        grad[:, i] = (plus[i] - minus[i]) / (2 * steps[i])
        hess[:, i, i] = (plus[i] - 2 * center + minus[i]) / steps[i] ** 2
        cov_grad[i] = (cov_plus - cov_minus) / (2 * steps[i])
    for i in range(k):
        for j in range(i + 1, k):
            # f(+i+j) + f(-i-j) - f(+i) - f(-i) - f(+j) - f(-j) + 2 f(0) = 2 h_i h_j f_ij + O(h⁴),
            # reusing the axis points: two new evaluations per pair instead of four
            e = np.zeros(k)
            e[i] = steps[i]
            e[j] = steps[j]
            both_plus, _ = _pieces(cp, theta + e, with_cov=False)
            both_minus, _ = _pieces(cp, theta - e, with_cov=False)
            total = (both_plus + both_minus - plus[i] - minus[i] - plus[j] - minus[j]
                     + 2 * center)
            hess[:, i, j] = hess[:, j, i] = total / (2 * steps[i] * steps[j])
    return grad, hess, cov_grad


def variance_derivatives(cp: CrossProducts, theta: FloatArray, method: Method,
                         ) -> VarianceDerivatives:
    """Derivatives of the deviance and of vcov(β̂) in φ = (θ, σ) at the optimum θ̂.

    Parameters
    ----------
    cp
        The design's cross-products.
    theta
        The optimum θ̂ (σ̂ is profiled from it).
    method
        ``"REML"`` or ``"ML"``: which deviance is differentiated.

    Returns
    -------
    VarianceDerivatives
    """
    theta = np.asarray(theta, dtype=np.float64)
    k = len(theta)
    steps = _RELATIVE_STEP * np.abs(theta) + _ABSOLUTE_STEP
    center, cov1 = _pieces(cp, theta, with_cov=True)
    assert cov1 is not None
    coarse = _differences(cp, theta, center, steps)
    fine = _differences(cp, theta, center, steps / 2)
    # Richardson: the step² error term cancels, (4 D(h/2) - D(h)) / 3 = D + O(h⁴)
    pieces_grad, pieces_hess, cov_grad_theta = ((4 * f - c) / 3
                                                for f, c in zip(fine, coarse, strict=True))
    # a = log|L|² (+ log|R_X|² for REML), then r²
    with_rx = 1.0 if method == "REML" else 0.0
    grad = np.stack([pieces_grad[0] + with_rx * pieces_grad[1], pieces_grad[2]])
    hess = np.stack([pieces_hess[0] + with_rx * pieces_hess[1], pieces_hess[2]])
    r2 = center[2]
    dof = residual_dof(cp, method)
    sigma2 = r2 / dof
    sigma = float(np.sqrt(sigma2))
    full = np.zeros((k + 1, k + 1))
    full[:k, :k] = hess[0] + hess[1] / sigma2
    full[:k, k] = full[k, :k] = -2.0 * grad[1] / sigma**3
    full[k, k] = 6.0 * r2 / sigma2**2 - 2.0 * dof / sigma2
    cov_gradient = np.concatenate([sigma2 * cov_grad_theta, (2.0 * sigma * cov1)[None]], axis=0)
    profiled_gradient = grad[0] + grad[1] / sigma2
    profiled_hessian = full[:k, :k] - np.outer(full[:k, k], full[:k, k]) / full[k, k]
    return VarianceDerivatives(hessian=full, cov_gradient=cov_gradient,
                               covariance=sigma2 * cov1,
                               profiled_gradient=profiled_gradient,
                               profiled_hessian=profiled_hessian)


# lmerTest's tolerance for a zero eigenvalue of the Hessian in (θ, σ)
EIGENVALUE_TOL = 1e-8


def _plural(count: int) -> str:
    return "eigenvalues" if count > 1 else "eigenvalue"


def hessian_messages(derivs: VarianceDerivatives) -> list[str]:
    """lmerTest's warnings about the Hessian of the deviance in (θ, σ).

    A negative eigenvalue means the point is not a minimum; one near zero is a flat
    direction, along which a variance parameter (and the df that depend on it) is not
    identified.
    """
    values = np.linalg.eigvalsh(derivs.hessian)[::-1]
    messages = []
    negative = values[values < -EIGENVALUE_TOL]
    if len(negative):
        messages.append(f"Model failed to converge with {len(negative)} negative "
                        f"{_plural(len(negative))}: "
                        + " ".join(f"{v:.1e}" for v in negative))
    zero = values[np.abs(values) <= EIGENVALUE_TOL]
    if len(zero):
        messages.append(f"Model may not have converged with {len(zero)} {_plural(len(zero))} "
                        "close to zero: " + " ".join(f"{v:.1e}" for v in zero))
    return messages


def variance_parameter_covariance(derivs: VarianceDerivatives,
                                  tol: float = EIGENVALUE_TOL) -> FloatArray:
    """A = 2 H⁻¹, the asymptotic covariance of φ̂ = (θ̂, σ̂) (lmerTest's ``vcov_varpar``),
    through a Moore-Penrose inverse over the eigenvalues above ``tol`` as lmerTest takes
    it when the Hessian is not positive definite."""
    values, vectors = np.linalg.eigh(derivs.hessian)
    keep = values > tol
    return np.asarray(2.0 * (vectors[:, keep] / values[keep]) @ vectors[:, keep].T)


def satterthwaite_df(derivs: VarianceDerivatives, tol: float = EIGENVALUE_TOL) -> FloatArray:
    """Satterthwaite's df for each coefficient, as lmerTest computes them.

    df_j = 2 C_jj² / (g_jᵀ A g_j), A = 2 H⁻¹ (a Moore-Penrose inverse over the eigenvalues
    above ``tol``, as lmerTest does when the Hessian is not positive definite). The Hessian
    is in the standardized coordinates (``standardize``), where its scale does not depend
    on the data's units; the df are invariant to that change of variables.
    """
    a = variance_parameter_covariance(derivs, tol)
    p = derivs.covariance.shape[0]
    df = np.empty(p)
    for j in range(p):
        g = derivs.cov_gradient[:, j, j]
        denominator = float(g @ a @ g)
        df[j] = 2.0 * derivs.covariance[j, j] ** 2 / denominator if denominator > 0 else np.inf
    return df
