"""Parametric bootstrap confidence intervals of a mixed model: lme4's
``confint(fit, method = "boot", boot.type = "perc")`` (``bootMer`` with new random
effects, ``use.u = FALSE``, then ``boot::boot.ci``'s percentile interval).

Each simulation draws a response from the fitted model, y* = Xβ̂ + Zb* + ε* with
b* ~ N(0, σ̂² Λθ̂ Λθ̂ᵀ) and ε* ~ N(0, σ̂² I), refits it by the fit's own method (REML or
ML) and records the parameters on lme4's sd/cor scale and the fixed effects. The design,
its grouping and its sparsity do not change between simulations, only y: the refits share
the fit's cross-products and rebuild only Z'y, X'y and y'y (``responses.NewResponses``),
and run on the standardized design, starting from the fit's θ̂, as lme4's ``refit`` starts.

The random numbers are numpy's (PCG64, seeded): a seed reproduces a run here, not R's
stream, so the intervals agree with lme4's within Monte Carlo error, which
``percentile_standard_error`` estimates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from service.stats.design.types import Design, FloatArray
from service.stats.errors import StatsError
from service.stats.inference import IntervalRow, Intervals, variance_parameter_names
from service.stats.lmm.dense_objective import DenseObjective, fits_densely
from service.stats.lmm.factor import update_factor
from service.stats.lmm.objective import Method, Objective, residual_dof
from service.stats.lmm.optimize import minimize_theta
from service.stats.lmm.responses import NewResponses
from service.stats.lmm.single_term import SingleTermObjective
from service.stats.lmm.standardized_fit import StandardizedFit, standardized_fit
from service.stats.lmm.structure import CrossProducts
from service.stats.results import FitResult
from service.stats.threads import single_threaded_blas

# lme4's nloptwrap stops at an improvement of 1e-8 in the objective: the refits' estimates
# are then good to far below the bootstrap's Monte Carlo error
_REFIT_FTOL_ABS = 1e-8
# BOBYQA's first trust region around θ̂ (θ̃ is of order one): a simulated θ̂* is usually
# within it, and this saves a quarter of the evaluations of nlopt's default (measured on
# sleepstudy: 40 instead of 55 per refit)
_REFIT_STEP = 0.1

Report = Callable[[int, int], None]


class BootstrapError(StatsError):
    """The bootstrap cannot be run or gave nothing (every refit failed)."""


@dataclass(frozen=True, eq=False)
class BootstrapSample:
    """The bootstrap distribution: one row of ``replicates`` per simulation (NaN where
    its refit failed), columns named as ``confint(fit, oldNames = FALSE)`` rows."""

    names: tuple[str, ...]
    estimates: FloatArray
    replicates: FloatArray
    failed: int


class Simulator:
    """Draws responses from a fitted model (lme4's ``simulate(fit, use.u = FALSE)``), in
    the standardized coordinates: ỹ* = X̃β̃ + Z̃b̃* + ε̃*, b̃* = σ̃ Λ̃ u*."""

    def __init__(self, fit: StandardizedFit) -> None:
        self.fit = fit
        self.mean = np.asarray(fit.standardized.X @ fit.beta, dtype=np.float64)
        self.terms = [(term.block.codes, term.block.covariates, term.n_levels,
                       term.relative_factor(fit.theta)) for term in fit.cp.terms]

    def draw(self, rng: np.random.Generator) -> FloatArray:
        sigma = self.fit.sigma
        y = self.mean.copy()
        for codes, covariates, levels, t in self.terms:
            u = rng.standard_normal((t.shape[0], levels))
            effects = sigma * (t @ u).T  # b* = σ T u*, one row per level
            y += np.einsum("ra,ra->r", covariates, effects[codes])
        y += sigma * rng.standard_normal(len(y))
        return y

    def user_response(self, y: FloatArray) -> FloatArray:
        """A standardized response in the user's units (y = X̃γ + s ỹ)."""
        scaling = self.fit.scaling
        return np.asarray(self.fit.standardized.X @ scaling.response_shift
                          + scaling.response_scale * y, dtype=np.float64)


def refit_objective(cp: CrossProducts, method: Method) -> Objective:
    """The cheapest evaluation of the objective for this design's refits: one dense factor
    for few random effects, the batched single-term one for one term with many levels,
    else the engine's blocked factor (all give the same numbers)."""
    if fits_densely(cp):
        return DenseObjective(cp, method)
    if cp.n_rest == 0:
        return SingleTermObjective(cp, method)
    return Objective(cp, method)


class Refitter:
    """Refits the model to new standardized responses (lme4's ``refit``), from θ̂."""

    def __init__(self, fit: StandardizedFit) -> None:
        self.fit = fit
        self.responses = NewResponses(fit.cp, fit.standardized)
        self.lower = fit.cp.lower_bounds()
        self.step = np.full(fit.cp.n_theta, _REFIT_STEP)
        self.dof = residual_dof(fit.cp, fit.method)

    def refit(self, y: FloatArray) -> FloatArray | None:
        """The sd/cor values, σ and β of the refit to ``y`` in the user's units (the
        statistic of lme4's ``confint(method = "boot")``); None if the refit failed."""
        fit = self.fit
        cp = self.responses.cross_products(y)
        objective = refit_objective(cp, fit.method)
        try:
            optimum = minimize_theta(objective, fit.theta, self.lower,
                                     initial_step=self.step, ftol_abs=_REFIT_FTOL_ABS)
            factor = update_factor(cp, optimum.theta)
        except np.linalg.LinAlgError:
            return None
        sigma = math.sqrt(factor.penalized_rss / self.dof)
        return np.concatenate([fit.user_sdcor(optimum.theta, sigma),
                               fit.user_fixed_effects(factor.fixed_effects())])


def parametric_bootstrap(design: Design, result: FitResult, nsim: int, seed: int,
                         report: Report | None = None) -> BootstrapSample:
    """Simulate ``nsim`` responses from a mixed-model fit and refit each (``bootMer``).

    Parameters
    ----------
    design
        The fitted design.
    result
        Its fit (REML or ML: the refits use the same method).
    nsim
        Number of simulations (at least 1).
    seed
        Seed of numpy's PCG64 generator.
    report
        Called with (simulations done, nsim) after each refit.

    Returns
    -------
    BootstrapSample
    """
    if nsim < 1:
        raise BootstrapError(f"nsim must be at least 1, not {nsim}")
    with single_threaded_blas():
        fit = standardized_fit(design, result)
        simulator = Simulator(fit)
        refitter = Refitter(fit)
        rng = np.random.default_rng(seed)
        estimates = np.concatenate([fit.user_sdcor(fit.theta, fit.sigma),
                                    fit.user_fixed_effects(fit.beta)])
        replicates = np.full((nsim, len(estimates)), np.nan)
        failed = 0
        for i in range(nsim):
            values = refitter.refit(simulator.draw(rng))
            if values is None:
                failed += 1
            else:
                replicates[i] = values
            if report is not None:
                report(i + 1, nsim)
    names = (*variance_parameter_names(result.random_effects), *design.fixed_names)
    return BootstrapSample(names=names, estimates=estimates, replicates=replicates,
                           failed=failed)


def percentile_bounds(values: FloatArray, level: float) -> tuple[float, float]:
    """The percentile interval of a bootstrap distribution, as ``boot::boot.ci(type =
    "perc")`` (``norm.inter``): the ((R + 1) α)-th order statistics of the R finite values,
    interpolated on the normal quantile scale between neighbours."""
    t = np.sort(values[np.isfinite(values)])
    r = len(t)
    if r == 0:
        return math.nan, math.nan
    out = []
    for alpha in ((1.0 - level) / 2.0, (1.0 + level) / 2.0):
        rank = (r + 1) * alpha
        k = math.trunc(rank)
        if k == rank and 0 < k <= r:
            out.append(float(t[k - 1]))
        elif k <= 0:
            out.append(float(t[0]))
        elif k >= r:
            out.append(float(t[-1]))
        else:
            z = stats.norm.ppf([alpha, k / (r + 1), (k + 1) / (r + 1)])
            out.append(float(t[k - 1] + (z[0] - z[1]) / (z[2] - z[1]) * (t[k] - t[k - 1])))
    return out[0], out[1]


def percentile_standard_error(values: FloatArray, probability: float) -> float:
    """The Monte Carlo standard error of the bootstrap percentile at ``probability``.

    Distribution-free: the number of the R values below the quantile is binomial with SD
    m = sqrt(R p (1 − p)), so the percentile moves by about m order statistics; its SE is
    m times the slope of the order statistics around rank (R + 1) p, measured between the
    ranks ⌊(R + 1)p − m⌋ and ⌈(R + 1)p + m⌉. (tests/data/r/intervals.R computes the same
    for lme4's bootstrap.)
    """
    t = np.sort(values[np.isfinite(values)])
    r = len(t)
    rank = (r + 1) * probability
    m = math.sqrt(r * probability * (1.0 - probability))
    low = max(1, math.floor(rank - m))
    high = min(r, math.ceil(rank + m))
    if high <= low:
        return math.nan
    return m * float(t[high - 1] - t[low - 1]) / (high - low)


def bootstrap_intervals(sample: BootstrapSample, level: float) -> Intervals:
    """lme4's percentile intervals of a bootstrap sample at ``level``.

    Raises
    ------
    BootstrapError
        If every refit failed (lme4: "*all* bootstrap runs failed!").
    """
    if not 0.0 < level < 1.0:
        raise BootstrapError(f"level must be between 0 and 1 (exclusive), not {level}")
    if sample.failed == len(sample.replicates):
        raise BootstrapError("Every bootstrap refit failed; no interval can be formed.")
    rows = []
    for j, name in enumerate(sample.names):
        lower, upper = percentile_bounds(sample.replicates[:, j], level)
        rows.append(IntervalRow(name, lower, upper))
    return Intervals(method="boot", level=level, rows=tuple(rows))
