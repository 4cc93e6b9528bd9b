"""Reading a confidence interval off a likelihood profile, as lme4's ``confint.thpr`` does.

lme4 interpolates the profile ζ(parameter) by a natural cubic spline through its points
(R's ``splines::interpSpline``) and inverts that spline (``splines::backSpline``): the
inverse is a piecewise cubic in ζ through the same points, with slopes the reciprocals
of the forward spline's, quadratic on the two end intervals (and linear where a quadratic
would bend the wrong way). The interval's bounds are the inverse at ±z; outside the
range of ζ the profile has no answer (R's NA), which ``confint`` replaces by the
parameter's bound (0 for a standard deviation, ±1 for a correlation) or leaves NA (a
fixed effect). A profile the spline cannot invert (ζ not increasing at its points)
falls back to linear interpolation of the points, as lme4 does after its warning.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline

from service.stats.design.types import FloatArray

# interpSpline needs at least as many points as the spline's order
_MIN_POINTS = 4


def invert_profile(values: FloatArray, zeta: FloatArray, at: FloatArray) -> FloatArray:
    """The parameter values where the profile ζ reaches ``at`` (NaN outside its range).

    Parameters
    ----------
    values, zeta
        The profile's points (parameter value, signed root deviance), any order; points
        whose ζ is NaN (a failed refit) are left out.
    at
        The ζ values to read off (±qnorm((1 + level) / 2)).

    Returns
    -------
    numpy.ndarray
        The parameter values, NaN where ``at`` is outside the spline's range of ζ.
    """
    keep = np.isfinite(zeta) & np.isfinite(values)
    order = np.argsort(values[keep], kind="stable")
    x = values[keep][order]
    z = zeta[keep][order]
    at = np.asarray(at, dtype=np.float64)
    if len(x) < 2:
        return np.full(at.shape, np.nan)
    if len(x) >= _MIN_POINTS and np.all(np.diff(x) > 0) and np.all(np.diff(z) > 0):
        slopes = CubicSpline(x, z, bc_type="natural")(x, 1)
        return _evaluate(z, _back_spline(x, z, slopes), at)
    return _linear(x, z, at)


def _back_spline(x: FloatArray, z: FloatArray, slopes: FloatArray) -> FloatArray:
    """The coefficients (per interval of ζ, powers 0..3 of ζ − ζ_i) of the inverse spline
    (``splines:::backSpline.npolySpline``): value x_i and slope 1/ζ'(x_i) at every point."""
    k = len(x)
    dx = np.diff(x)
    dz = np.diff(z)
    coef = np.zeros((k, 4))
    coef[:, 0] = x
    coef[:, 1] = 1.0 / slopes
    for i in range(k - 1):
        # the cubic through (z_i, x_i) and (z_{i+1}, x_{i+1}) with both end slopes
        system = np.array([[dz[i] ** 2, dz[i] ** 3], [2.0 * dz[i], 3.0 * dz[i] ** 2]])
        rhs = np.array([dx[i] - dz[i] * coef[i, 1], coef[i + 1, 1] - coef[i, 1]])
        coef[i, 2:] = np.linalg.solve(system, rhs)
    if k > 2:
        # the end intervals are quadratics: value at both ends, slope at the inner one
        coef[0, 3] = coef[k - 2, 3] = 0.0
        coef[0, 1:3] = np.linalg.solve(np.array([[dz[0], dz[0] ** 2], [1.0, 2.0 * dz[0]]]),
                                       np.array([dx[0], 1.0 / slopes[1]]))
        coef[k - 2, 2] = (dx[-1] - dz[-1] * coef[k - 2, 1]) / dz[-1] ** 2
    # a quadratic that would turn back inside its interval is replaced by the chord
    if coef[0, 2] > 0:
        coef[0, 2] = 0.0
        coef[0, 1] = dx[0] / dz[0]
    if coef[k - 2, 2] < 0:
        coef[k - 2, 2] = 0.0
        coef[k - 2, 1] = dx[-1] / dz[-1]
    return coef[:-1]


def _evaluate(knots: FloatArray, coef: FloatArray, at: FloatArray) -> FloatArray:
    """A piecewise polynomial at ``at``: intervals (ζ_i, ζ_{i+1}] (the first closed, as
    R's ``cut``), NaN outside [ζ_1, ζ_k] (``predict.polySpline`` does not extrapolate)."""
    inside = (at >= knots[0]) & (at <= knots[-1])
    index = np.clip(np.searchsorted(knots, at, side="left") - 1, 0, len(coef) - 1)
    delta = at - knots[index]
    c = coef[index]
    value = c[..., 0] + delta * (c[..., 1] + delta * (c[..., 2] + delta * c[..., 3]))
    return np.where(inside, value, np.nan)


def _linear(x: FloatArray, z: FloatArray, at: FloatArray) -> FloatArray:
    """Linear interpolation of x over ζ (R's ``approxfun(ζ, x)``), NaN outside the range."""
    order = np.argsort(z, kind="stable")
    zs, xs = z[order], x[order]
    value = np.interp(at, zs, xs)
    return np.where((at >= zs[0]) & (at <= zs[-1]), value, np.nan)
