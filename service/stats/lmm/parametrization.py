"""Two parametrizations of the variance parameters for the optimizer (see ``standardize``).

The objective is always evaluated on the standardized design, whose arithmetic does not
depend on the data's units; what differs is the θ that BOBYQA moves, which decides which
optimum it finds when the objective has several (boundary fits of many random slopes)
and how well conditioned its search is:

- ``lme4``: lme4's θ, with each covariate's row of T rescaled by that covariate's root
  mean square (T = D⁻¹T̂). A diagonal change, so it keeps lme4's boundaries, its start
  T = I for covariates of unit size and so its path and its choice among optima. Each
  evaluation maps T̂ to the standardized T̃ = lower_factor(G T̂), G = K⁻¹D⁻¹.
- ``centred``: the standardized θ̃ itself (covariates centred on the term's intercept).
  Where a covariate's mean is far from zero relative to its spread, lme4's θ is badly
  conditioned (the intercept's variance at x = 0 is huge and almost perfectly correlated
  with the slope's) and BOBYQA stalls in it, as lme4's does; in θ̃ the problem is as well
  conditioned as for centred data.

Terms whose covariates are only rescaled (random intercepts, terms without an intercept
column) have G = I, and then the two coincide.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from service.stats.design.types import Design, FloatArray
from service.stats.lmm.factor import BlockedFactor, update_factor
from service.stats.lmm.objective import Method, Objective
from service.stats.lmm.standardize import Standardization, lower_factor
from service.stats.lmm.structure import CrossProducts, TermLayout

Kind = Literal["lme4", "centred"]

# A covariate whose mean exceeds this many standard deviations makes lme4's θ badly
# conditioned: the centred parametrization is tried first.
OFF_CENTRE_RATIO = 3.0


class Parametrization:
    """The optimizer's θ of one kind, for the terms of ``cp`` (standardized design)."""

    def __init__(self, kind: Kind, cp: CrossProducts, standardized: Design,
                 scaling: Standardization) -> None:
        self.kind: Kind = kind
        self._scaling = scaling
        position = {id(block): i for i, block in enumerate(standardized.random)}
        self._terms: list[tuple[TermLayout, int, FloatArray | None]] = []
        for term in cp.terms:
            index = position[id(term.block)]
            g = scaling.optimizer_map(index)
            identity = np.allclose(g, np.eye(term.q), rtol=0.0, atol=1e-12)
            self._terms.append((term, index, None if identity else g))
        # every term's G is the identity: both kinds are the same θ (decided once, since
        # ``standardized`` runs at every evaluation of the objective)
        self.coincides_with_centred = all(g is None for _, _, g in self._terms)

    def standardized(self, theta: FloatArray) -> FloatArray:
        """θ̃ of the standardized objective at this parametrization's θ."""
        theta = np.asarray(theta, dtype=np.float64)
        if self.kind == "centred" or self.coincides_with_centred:
            return theta
        out = theta.copy()
        for term, _, g in self._terms:
            if g is not None:
                t_tilde = lower_factor(g @ term.relative_factor(theta))
                out[term.theta_start:term.theta_start + term.n_theta] = t_tilde[
                    term.lower_rows, term.lower_cols]
        return out

    def user_factors(self, theta: FloatArray) -> list[FloatArray]:
        """The user's T per term (lme4's θ), in ``cp.terms`` order."""
        out = []
        for term, index, _ in self._terms:
            t = term.relative_factor(theta)
            if self.kind == "lme4":
                # exact (a diagonal rescaling): a boundary fit's zeros stay zeros
                out.append(self._scaling.user_factor(index, t))
            else:
                out.append(self._scaling.relative_factor(index, t))
        return out


def preferred_kinds(scaling: Standardization) -> tuple[Kind, ...]:
    """The parametrizations to try, first choice first: lme4's unless some random-effects
    covariate's mean is more than ``OFF_CENTRE_RATIO`` standard deviations from zero."""
    if max(scaling.term_off_centre, default=0.0) > OFF_CENTRE_RATIO:
        return ("centred", "lme4")
    return ("lme4", "centred")


class ReparametrizedObjective(Objective):
    """The standardized design's profiled objective as a function of one parametrization's θ."""

    def __init__(self, cp: CrossProducts, method: Method,
                 parametrization: Parametrization) -> None:
        super().__init__(cp, method)
        self.parametrization = parametrization

    def factor(self, theta: FloatArray) -> BlockedFactor:
        return update_factor(self.cp, self.parametrization.standardized(theta))

    def __call__(self, theta: FloatArray) -> float:
        return super().__call__(self.parametrization.standardized(theta))
