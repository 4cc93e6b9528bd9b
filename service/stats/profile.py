"""Likelihood profile confidence intervals of a mixed model: lme4's
``confint(fit, method = "profile")`` (``profile.merMod``, then ``confint.thpr``).

For each parameter, on lme4's sd/cor scale (``sd_*``, ``cor_*``, ``sigma``) and for each
fixed effect, the profile is the signed square root of the ML deviance difference

    ζ(x) = sign(x − x̂) · sqrt(d(x) − d̂),

d(x) the deviance minimized over every other parameter with this one held at x (a REML
fit is profiled on its ML refit, as lme4's ``refitML``). lme4's walk is followed point for
point: from the estimate, a first step of 1% (0.001 from 0; est + δ·SE for a fixed
effect), then steps aimed at δ = cutoff / 8 in ζ (capped at ten times the previous step),
until |ζ| passes cutoff = sqrt(χ²_{0.99, k}) (k: all parameters) or the parameter its
bound; the interval is read off a spline through the points (``profile_spline``).

Each point is a refit on the standardized design's cross-products (``standardized_fit``):
a variance parameter's by BOBYQA over the other variance parameters (β profiled out), a
fixed effect's by moving its column into the response (``responses.combine_columns``) and
minimizing the ML objective over θ.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import nlopt
import numpy as np
from scipy import stats

from service.stats.design.types import Design, FloatArray
from service.stats.errors import StatsError
from service.stats.inference import IntervalRow, Intervals, variance_parameter_names
from service.stats.lmm import fit_lmm
from service.stats.lmm.factor import update_factor
from service.stats.lmm.objective import Objective
from service.stats.lmm.optimize import minimize_theta
from service.stats.lmm.responses import combine_columns
from service.stats.lmm.standardized_fit import StandardizedFit, standardized_fit
from service.stats.profile_spline import invert_profile
from service.stats.results import FitResult
from service.stats.threads import single_threaded_blas

# lme4's profile.merMod defaults
ALPHA_MAX = 0.01  # the walk covers the 99% (joint) cut-off
MAX_POINTS = 100  # per direction
DELTA_CUTOFF = 1.0 / 8.0
MAX_MULT = 10.0
MIN_STEP = 1e-6
# a refit that finds a deviance lower than the fit's by more than this is an error (lme4:
# "profiling detected new, lower deviance"); smaller differences are round-off and read 0
DEVIANCE_TOL = 1e-6

# the variance parameters' refits (BOBYQA over the others, each scaled by its estimate)
_FTOL_ABS = 1e-10
_XTOL_ABS = 1e-9
_INITIAL_STEP = 0.05
_MAX_EVALUATIONS = 20_000

Report = Callable[[int, int], None]


class ProfileError(StatsError):
    """The profile cannot be computed (a refit better than the fit, a level outside (0, 1))."""


@dataclass(frozen=True)
class ProfilePoint:
    """One point of a profile: the parameter's value and ζ there."""

    value: float
    zeta: float
    others: FloatArray  # the variance parameters at this point's optimum (the next start)


# (the parameter's value, the start of the refit) -> the point there
ZetaAt = Callable[[float, FloatArray], ProfilePoint]


class _VarianceDeviance:
    """The ML deviance (user units) as a function of the sd/cor values and σ, β profiled:
    d = log|L|² + r²(θ)/σ² + n log(2πσ²) (lme4's ``devfun2``)."""

    def __init__(self, fit: StandardizedFit) -> None:
        self.fit = fit
        self._n = fit.cp.n_obs

    def __call__(self, values: FloatArray) -> float:
        sigma = float(values[-1])
        if not sigma > 0.0:
            return math.inf
        theta = self.fit.theta_of_sdcor(values)
        if theta is None:
            return math.inf
        try:
            factor = update_factor(self.fit.cp, theta)
        except np.linalg.LinAlgError:
            return math.inf
        # r²/σ² is the same in either units (r̃²/σ̃²); σ in the log is the user's
        sigma_tilde = sigma / self.fit.response_scale
        return (factor.logdet_l + factor.penalized_rss / sigma_tilde**2
                + self._n * math.log(2.0 * math.pi * sigma**2))


def _bounds(fit: StandardizedFit) -> tuple[FloatArray, FloatArray]:
    """lme4's profile bounds on the sd/cor scale: sd ≥ 0, −1 ≤ cor ≤ 1, σ ≥ 0."""
    lower = np.full(fit.cp.n_theta + 1, -1.0)
    upper = np.full(fit.cp.n_theta + 1, 1.0)
    for term in fit.cp.terms:
        lower[term.diagonal_theta()] = 0.0
        upper[term.diagonal_theta()] = math.inf
    lower[-1], upper[-1] = 0.0, math.inf
    return lower, upper


def _minimize(function: Callable[[FloatArray], float], start: FloatArray, lower: FloatArray,
              upper: FloatArray, scale: FloatArray) -> tuple[FloatArray, float] | None:
    """BOBYQA on x / scale from ``start`` within the bounds; None if it failed."""
    best: list[tuple[float, FloatArray]] = [(math.inf, start)]

    def scaled(x: FloatArray, grad: FloatArray) -> float:
        point = np.asarray(x) * scale
        value = function(point)
        if value < best[0][0]:
            best[0] = (value, point)
        return value if math.isfinite(value) else 1e300

    if len(start) == 0:
        return start, function(start)
    opt = nlopt.opt(nlopt.LN_BOBYQA, len(start))
    opt.set_lower_bounds((lower / scale).tolist())
    opt.set_upper_bounds((upper / scale).tolist())
    opt.set_min_objective(scaled)
    opt.set_ftol_abs(_FTOL_ABS)
    opt.set_xtol_abs(_XTOL_ABS)
    opt.set_initial_step(_INITIAL_STEP)
    opt.set_maxeval(_MAX_EVALUATIONS)
    x0 = np.clip(start, lower, upper) / scale
    try:
        opt.optimize(x0.tolist())
    except nlopt.RoundoffLimited:
        pass  # the best point seen is the optimum
    except (RuntimeError, ValueError):
        return None
    value, point = best[0]
    return (point, value) if math.isfinite(value) else None


def _next_value(previous: ProfilePoint, last: ProfilePoint, delta: float, lower: float,
                upper: float) -> float:
    """lme4's ``nextpar``: the step that moves ζ by about δ, from the last two points."""
    change = last.value - previous.value
    rise = last.zeta - previous.zeta
    if not math.isfinite(rise) or rise == 0.0:
        step = MIN_STEP
    else:
        step = delta * change / rise
        if step < 0:
            step = MIN_STEP  # ζ fell: a non-monotone profile
        elif abs(step) > abs(MAX_MULT * change):
            step = abs(MAX_MULT * change)
    return min(upper, max(lower, last.value + math.copysign(1.0, change) * step
                          if change != 0.0 else last.value))


def _walk(zeta_at: ZetaAt, first: ProfilePoint, second: ProfilePoint, lower: float,
          upper: float, cutoff: float, delta: float) -> list[ProfilePoint]:
    """lme4's ``fillmat``: points from ``second`` on, away from ``first``, until ζ passes
    the cut-off or the parameter its bound."""
    points = [first, second]
    while len(points) < MAX_POINTS:
        last = points[-1]
        if not (lower < last.value < upper):
            break
        if math.isfinite(last.zeta) and abs(last.zeta) > cutoff:
            break
        value = _next_value(points[-2], last, delta, lower, upper)
        points.append(zeta_at(value, last.others))
    return points


def _signed_root(value: float, estimate: float, deviance: float, base: float) -> float:
    difference = deviance - base
    if difference < -DEVIANCE_TOL:
        raise ProfileError(
            f"Profiling found a deviance {-difference:.3g} lower than the fit's: the fit "
            "has not converged to its optimum, so its profile is not defined. Check the "
            "model's convergence messages.")
    return math.copysign(math.sqrt(max(difference, 0.0)), value - estimate)


class Profiler:
    """The profiles of one model, around its ML fit.

    Parameters
    ----------
    fit
        The ML fit in standardized coordinates.
    fixed_se
        The ML fit's standard errors of the fixed effects (the first step's scale).
    """

    def __init__(self, fit: StandardizedFit, fixed_se: FloatArray) -> None:
        self.fit = fit
        self.deviance = _VarianceDeviance(fit)
        self.variance = fit.user_sdcor(fit.theta, fit.sigma)
        self.fixed = fit.user_fixed_effects(fit.beta)
        self.fixed_se = fixed_se
        self.base = self.deviance(self.variance)
        self.lower, self.upper = _bounds(fit)
        k = len(self.variance) + len(self.fixed)
        self.cutoff = math.sqrt(float(stats.chi2.ppf(1.0 - ALPHA_MAX, k)))
        self.delta = self.cutoff * DELTA_CUTOFF
        # BOBYQA's variables: each variance parameter over its size (correlations as they are)
        scale = np.where(self.upper == 1.0, 1.0, np.abs(self.variance))
        self.scale = np.where(scale > 0, scale, self.variance[-1])

    @classmethod
    def of(cls, design: Design) -> tuple[Profiler, FitResult]:
        """The profiler of ``design``'s ML fit, and that fit."""
        result = fit_lmm(design, "ML")
        fixed_se = np.array([fe.std_error for fe in result.fixed_effects], dtype=np.float64)
        return cls(standardized_fit(design, result), fixed_se), result

    def variance_zeta(self, w: int, value: float, start: FloatArray) -> ProfilePoint:
        """ζ with variance parameter ``w`` (sd/cor/σ layout) held at ``value``: the
        deviance minimized over the others from ``start`` (a full sd/cor/σ vector)."""
        others = np.arange(len(self.variance)) != w

        def deviance(x: FloatArray) -> float:
            values = start.copy()
            values[w] = value
            values[others] = x
            return self.deviance(values)

        found = _minimize(deviance, start[others], self.lower[others], self.upper[others],
                          self.scale[others])
        if found is None:
            return ProfilePoint(value, math.nan, start)
        point, fval = found
        values = start.copy()
        values[w] = value
        values[others] = point
        return ProfilePoint(value, _signed_root(value, float(self.variance[w]), fval, self.base),
                      values)

    def variance_profile(self, w: int) -> list[ProfilePoint]:
        estimate = float(self.variance[w])
        return self._both_ways(lambda value, start: self.variance_zeta(w, value, start),
                               estimate, 0.001 if estimate == 0 else estimate * 1.01,
                               float(self.lower[w]), float(self.upper[w]), self.variance)

    def fixed_profile(self, j: int) -> list[ProfilePoint]:
        fit = self.fit
        estimate = float(self.fixed[j])
        p = len(self.fixed)
        m_inverse = np.linalg.inv(fit.scaling.fixed_map)
        # the other columns' span and its normal, in X̃'s coordinates (β = M(γ + s β̃))
        q, _ = np.linalg.qr(np.delete(m_inverse, j, axis=1), mode="complete")
        normal = q[:, p - 1]
        s = fit.response_scale
        shift = float(normal @ fit.scaling.response_shift) / s
        slope = float(normal @ m_inverse[:, j]) / s
        combine = np.zeros((p + 1, p))
        combine[:p, :p - 1] = q[:, :p - 1]
        combine[p, p - 1] = 1.0
        offset = fit.cp.n_obs * math.log(s**2)  # the ML deviance's units (user_units)

        def zeta_at(value: float, start: FloatArray) -> ProfilePoint:
            # y − x_j·value over s, in [X̃ ỹ]'s columns: ỹ + X̃ n (nᵀγ − value nᵀm_j) / s
            a = combine.copy()
            a[:p, p - 1] = normal * (shift - value * slope)
            objective = Objective(combine_columns(fit.cp, a), "ML")
            try:
                optimum = minimize_theta(objective, fit.theta, fit.cp.lower_bounds())
            except np.linalg.LinAlgError:  # no finite objective: a failed point, as lme4's NA
                return ProfilePoint(value, math.nan, start)
            deviance = optimum.objective + offset
            return ProfilePoint(value, _signed_root(value, estimate, deviance, self.base), start)

        shifted = estimate + self.delta * float(self.fixed_se[j])
        return self._both_ways(zeta_at, estimate, shifted, -math.inf, math.inf, self.variance)

    def _both_ways(self, zeta_at: ZetaAt, estimate: float,
                   shifted_value: float, lower: float, upper: float,
                   start: FloatArray) -> list[ProfilePoint]:
        at_estimate = ProfilePoint(estimate, 0.0, start)
        shifted = zeta_at(shifted_value, start)
        points = _walk(zeta_at, at_estimate, shifted, lower, upper, self.cutoff, self.delta)
        if estimate > lower:
            points += _walk(zeta_at, shifted, at_estimate, lower, upper, self.cutoff,
                            self.delta)
        return points


def _bound(value: float, fallback: float) -> float | None:
    """A bound read off the profile, else the parameter's bound (R's NA → bound); None for
    an infinite or missing bound (NA in R, or its Inf)."""
    if math.isfinite(value):
        return float(value)
    return float(fallback) if math.isfinite(fallback) else None


def profile_intervals(design: Design, level: float, report: Report | None = None,
                      ) -> Intervals:
    """lme4's profile confidence intervals, ``confint(fit, method = "profile",
    oldNames = FALSE)``, of a mixed model.

    Parameters
    ----------
    design
        The model's design (a REML or ML fit: the profile is of the ML deviance).
    level
        Confidence level in (0, 1).
    report
        Called with (parameters done, parameters in all) after each profile.

    Returns
    -------
    Intervals
        Rows ``sd_*``, ``cor_*``, ``sigma``, then the fixed effects. A bound the profile
        does not reach is the parameter's bound (0 for a standard deviation, ±1 for a
        correlation), as lme4 gives it; None where lme4 gives NA or Inf.

    Raises
    ------
    ProfileError
        If a refit finds a lower deviance than the fit (the fit has not converged).
    """
    if not 0.0 < level < 1.0:
        raise ProfileError(f"level must be between 0 and 1 (exclusive), not {level}")
    with single_threaded_blas():
        profiler, result = Profiler.of(design)
        names = [*variance_parameter_names(result.random_effects), *design.fixed_names]
        z = float(stats.norm.ppf((1.0 + level) / 2.0))
        at = np.array([-z, z])
        total = len(names)
        rows: list[IntervalRow] = []
        for index, name in enumerate(names):
            n_variance = len(profiler.variance)
            if index < n_variance:
                points = profiler.variance_profile(index)
                fallback = (float(profiler.lower[index]), float(profiler.upper[index]))
            else:
                points = profiler.fixed_profile(index - n_variance)
                fallback = (math.nan, math.nan)
            values = np.array([pt.value for pt in points])
            zeta = np.array([pt.zeta for pt in points])
            values, unique = np.unique(values, return_index=True)
            lower, upper = invert_profile(values, zeta[unique], at)
            rows.append(IntervalRow(name, _bound(lower, fallback[0]),
                                    _bound(upper, fallback[1])))
            if report is not None:
                report(index + 1, total)
    return Intervals(method="profile", level=level, rows=tuple(rows))
