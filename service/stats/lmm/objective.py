"""Step two (lme4's ``mkLmerDevfun``): the profiled objective as a function of θ alone.

    ML:    d(θ)   = log|L|² + n (1 + log(2π r²(θ) / n))
    REML:  d_R(θ) = log|L|² + log|R_X|² + (n − p)(1 + log(2π r²(θ) / (n − p)))

(β and σ profiled out; see LMM-NOTES.md.)
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from service.stats.design.types import FloatArray
from service.stats.lmm.factor import BlockedFactor, update_factor
from service.stats.lmm.structure import CrossProducts

Method = Literal["REML", "ML"]


def residual_dof(cp: CrossProducts, method: Method) -> int:
    """n for ML, n − p for REML: the denominator of σ̂²."""
    return cp.n_obs - (cp.n_fixed if method == "REML" else 0)


def objective_from_factor(factor: BlockedFactor, cp: CrossProducts, method: Method) -> float:
    """The profiled deviance (ML) or REML criterion for an already computed factor."""
    dof = residual_dof(cp, method)
    r2 = factor.penalized_rss
    if r2 <= 0.0:
        return math.inf
    value = factor.logdet_l + dof * (1.0 + math.log(2.0 * math.pi * r2 / dof))
    if method == "REML":
        value += factor.logdet_rx
    return value


class Objective:
    """The profiled objective of one design, counting its evaluations.

    Parameters
    ----------
    cp
        The design's cross-products.
    method
        ``"REML"`` or ``"ML"``.
    """

    def __init__(self, cp: CrossProducts, method: Method) -> None:
        self.cp = cp
        self.method: Method = method
        self.evaluations = 0

    def factor(self, theta: FloatArray) -> BlockedFactor:
        return update_factor(self.cp, theta)

    def __call__(self, theta: FloatArray) -> float:
        self.evaluations += 1
        try:
            factor = update_factor(self.cp, np.asarray(theta, dtype=np.float64))
        except np.linalg.LinAlgError:
            return math.inf
        return objective_from_factor(factor, self.cp, self.method)
