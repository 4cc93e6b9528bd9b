"""A fitted mixed model in the engine's standardized coordinates, for the refits of
profiles and bootstraps.

A fit reports θ, β and σ in the user's units (``user_units``); refits that change only the
response (a simulated y) or fix one coefficient (a profile) work on the standardized
design's cross-products (``standardize``), where the arithmetic does not depend on the
data's units. This holds the fit mapped there and the maps of refits back to the user's
sd/cor scale (``sdcor``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.stats.design.types import Design, FloatArray
from service.stats.lmm.objective import Method
from service.stats.lmm.sdcor import sdcor_factor, sdcor_of_covariance
from service.stats.lmm.standardize import Standardization, lower_factor, standardize
from service.stats.lmm.structure import CrossProducts, cross_products
from service.stats.results import FitResult


@dataclass(frozen=True, eq=False)
class StandardizedFit:
    """The estimates θ̃, β̃, σ̃ of a fit on the standardized design, and the maps back.

    ``term_maps[i]`` is K (C̃ = C K) of ``cp.terms[i]``: a term's relative covariance is
    T Tᵀ = K T̃ T̃ᵀ Kᵀ in the user's units.
    """

    method: Method
    standardized: Design
    scaling: Standardization
    cp: CrossProducts
    term_maps: tuple[FloatArray, ...]
    theta: FloatArray
    beta: FloatArray
    sigma: float

    @property
    def response_scale(self) -> float:
        """s: the standardized response is in units of s."""
        return self.scaling.response_scale

    def user_sdcor(self, theta: FloatArray, sigma: float) -> FloatArray:
        """The sd/cor values of every term, then σ, in the user's units (lme4's
        ``Cv_to_Sv(θ, s = σ)``), from a standardized θ̃ and σ̃."""
        user_sigma = self.response_scale * sigma
        values = []
        for term, k in zip(self.cp.terms, self.term_maps, strict=True):
            factor = k @ term.relative_factor(theta)
            values.append(sdcor_of_covariance(user_sigma**2 * (factor @ factor.T), term))
        return np.concatenate([*values, [user_sigma]])

    def user_fixed_effects(self, beta: FloatArray) -> FloatArray:
        """β in the user's units from a standardized β̃."""
        return self.scaling.fixed_effects(beta)

    def theta_of_sdcor(self, values: FloatArray) -> FloatArray | None:
        """θ̃ from the user's sd/cor values and σ (the layout of ``user_sdcor``); None if
        some term's correlations are not those of a covariance matrix (lme4's
        ``Sv_to_Cv``)."""
        sigma = float(values[-1])
        theta = np.empty(self.cp.n_theta)
        for term, k in zip(self.cp.terms, self.term_maps, strict=True):
            start = term.theta_start
            factor = sdcor_factor(values[start:start + term.n_theta], term)
            if factor is None:
                return None
            # T̃ T̃ᵀ = K⁻¹ (D C D / σ²) K⁻ᵀ
            scaled = np.asarray(np.linalg.solve(k, factor), dtype=np.float64) / sigma
            t_tilde = lower_factor(scaled)
            theta[start:start + term.n_theta] = t_tilde[term.lower_rows, term.lower_cols]
        return theta


def standardized_fit(design: Design, result: FitResult) -> StandardizedFit:
    """Map a mixed-model fit of ``design`` to the standardized coordinates.

    Parameters
    ----------
    design
        The design that was fitted (``fit_lmm``'s input; aliased columns dropped).
    result
        Its fit (θ in lme4's term order, β̂ in the design's column order, σ̂).

    Returns
    -------
    StandardizedFit
    """
    standardized, scaling = standardize(design)
    cp = cross_products(standardized)
    position = {id(block): i for i, block in enumerate(standardized.random)}
    maps = tuple(scaling.term_maps[position[id(term.block)]] for term in cp.terms)
    user_theta = np.asarray(result.theta, dtype=np.float64)
    theta = np.empty(cp.n_theta)
    for term, k in zip(cp.terms, maps, strict=True):
        t_tilde = lower_factor(np.asarray(np.linalg.solve(k, term.relative_factor(user_theta)),
                                            dtype=np.float64))
        theta[term.theta_start:term.theta_start + term.n_theta] = t_tilde[
            term.lower_rows, term.lower_cols]
    s = scaling.response_scale
    beta = np.array([fe.estimate for fe in result.fixed_effects], dtype=np.float64)
    # β = M (γ + s β̃)
    beta_tilde = (np.linalg.solve(scaling.fixed_map, beta) - scaling.response_shift) / s \
        if beta.size else beta
    method: Method = "ML" if result.method == "ML" else "REML"
    return StandardizedFit(method=method, standardized=standardized, scaling=scaling, cp=cp,
                           term_maps=maps, theta=theta, beta=beta_tilde,
                           sigma=result.residual_std_dev / s)

