"""Map a fit done in standardized coordinates (``standardize``) back to the user's units."""

from __future__ import annotations

import math

import numpy as np

from service.stats.design.types import Design, FloatArray
from service.stats.lmm.conditional import conditional_covariances, conditional_modes
from service.stats.lmm.factor import BlockedFactor
from service.stats.lmm.objective import Method, residual_dof
from service.stats.lmm.optimize import Optimum
from service.stats.lmm.package import Solution
from service.stats.lmm.parametrization import Parametrization
from service.stats.lmm.standardize import Standardization
from service.stats.lmm.structure import CrossProducts


def objective_offset(scaling: Standardization, cp: CrossProducts, method: Method) -> float:
    """What the user's deviance (ML) or REML criterion adds to the standardized one.

    r² scales by s², so n' log r² gains n' log s² (n' = n, or n − p for REML); for REML,
    X̃ = X M gives log|R̃_X|² = log|R_X|² + log det(M)².
    """
    value = residual_dof(cp, method) * math.log(scaling.response_scale**2)
    if method == "REML":
        value -= scaling.log_det_fixed_map
    return value


def to_user_units(design: Design, standardized: Design, scaling: Standardization,
                  cp: CrossProducts, factor: BlockedFactor, optimum: Optimum,
                  method: Method, parametrization: Parametrization,
                  covariance_tilde: FloatArray) -> Solution:
    """The optimum of the standardized fit in the user's units.

    Parameters
    ----------
    design, standardized
        The user's design and the standardized one that was fitted.
    scaling
        The map between them.
    cp, factor, optimum
        The standardized fit: cross-products, factor at θ̃ and the optimizer's summary
        (in the optimizer's θ).
    parametrization
        The parametrization of the optimizer's θ.
    covariance_tilde
        vcov(β̃) of the standardized fit (``VarianceDerivatives.covariance`` at θ̃).
    method
        ``"REML"`` or ``"ML"``.

    Returns
    -------
    Solution
    """
    s = scaling.response_scale
    beta_tilde = factor.fixed_effects()
    sigma_tilde = math.sqrt(factor.penalized_rss / residual_dof(cp, method))
    modes_tilde = conditional_modes(cp, factor, beta_tilde)
    covariances_tilde = conditional_covariances(cp, factor, sigma_tilde)
    position = {id(block): i for i, block in enumerate(standardized.random)}
    factors = []
    blocks = []
    modes = []
    covariances = []
    theta = np.empty(cp.n_theta)
    for term, t, b_tilde, c_tilde in zip(cp.terms, parametrization.user_factors(optimum.theta),
                                         modes_tilde, covariances_tilde, strict=True):
        index = position[id(term.block)]
        k = scaling.term_maps[index]
        factors.append(t)
        blocks.append(design.random[index])
        theta[term.theta_start:term.theta_start + term.n_theta] = t[term.lower_rows,
                                                                    term.lower_cols]
        modes.append(np.ascontiguousarray(s * (b_tilde @ k.T)))  # b = s K b̃ per level
        covariances.append(s**2 * np.einsum("ab,lbc,dc->lad", k, c_tilde, k))
    offset = objective_offset(scaling, cp, method)
    return Solution(
        theta=theta, relative_factors=tuple(factors), blocks=tuple(blocks),
        beta=scaling.fixed_effects(beta_tilde),
        covariance=scaling.fixed_covariance(covariance_tilde),
        sigma=s * sigma_tilde, modes=modes, conditional_covariances=covariances,
        objective=optimum.objective + offset,
        initial_objective=optimum.initial_objective + offset)
