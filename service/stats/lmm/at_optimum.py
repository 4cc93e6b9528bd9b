"""A stored mixed-model fit's optimum on its rebuilt design, without refitting.

What lmerTest's F tests need beyond the stored result (the derivatives of vcov(β̂) in
the variance parameters, the Hessian of the deviance) is taken at the stored θ̂, mapped
into the standardized coordinates where the fit itself differentiated (``standardize``,
``derivatives``): the same numbers the fit's Satterthwaite df came from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from service.stats.design.types import Design, FloatArray, RandomBlock
from service.stats.lmm.derivatives import VarianceDerivatives, variance_derivatives
from service.stats.lmm.objective import Method
from service.stats.lmm.standardize import lower_factor, standardize
from service.stats.lmm.structure import cross_products


@dataclass(frozen=True, eq=False)
class StoredOptimum:
    """The fit's terms in lme4's order with their user-unit blocks and covariance
    matrices (σ̂² T Tᵀ), and the derivatives at θ̂ (vcov and its Jacobian in user units)."""

    blocks: tuple[RandomBlock, ...]
    covariances: tuple[FloatArray, ...]
    derivatives: VarianceDerivatives


def stored_optimum(design: Design, method: Method, theta: FloatArray,
                   sigma: float) -> StoredOptimum:
    """The optimum of a stored fit of ``design``.

    Parameters
    ----------
    design
        The design rebuilt from the fit's data and formula.
    method
        ``"REML"`` or ``"ML"``: the fit's.
    theta
        The stored θ̂ (lme4's, user units, lme4's term order).
    sigma
        The stored σ̂.

    Returns
    -------
    StoredOptimum
    """
    standardized, scaling = standardize(design)
    cp = cross_products(standardized)
    position = {id(block): i for i, block in enumerate(standardized.random)}
    theta = np.asarray(theta, dtype=np.float64)
    theta_tilde = np.empty_like(theta)
    blocks = []
    covariances = []
    for term in cp.terms:
        index = position[id(term.block)]
        t = term.relative_factor(theta)
        # T Tᵀ = K T̃ T̃ᵀ Kᵀ (``Standardization.relative_factor``), so T̃ = lower(K⁻¹ T)
        t_tilde = lower_factor(np.asarray(np.linalg.solve(scaling.term_maps[index], t),
                                          dtype=np.float64))
        theta_tilde[term.theta_start:term.theta_start + term.n_theta] = t_tilde[
            term.lower_rows, term.lower_cols]
        blocks.append(design.random[index])
        covariances.append(sigma**2 * (t @ t.T))
    derivs = variance_derivatives(cp, theta_tilde, method)
    derivs = replace(
        derivs, covariance=scaling.fixed_covariance(derivs.covariance),
        cov_gradient=np.stack([scaling.fixed_covariance(g) for g in derivs.cov_gradient]))
    return StoredOptimum(blocks=tuple(blocks), covariances=tuple(covariances),
                         derivatives=derivs)
