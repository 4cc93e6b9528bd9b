"""Step three (lme4's ``optimizeLmer``): minimize the profiled objective over θ with BOBYQA.

BOBYQA through nlopt, as lme4's default ``nloptwrap``, with lme4's start (T = I) and
bounds (diagonal elements of T ≥ 0), tighter tolerances than lme4's so that the optimum is
at least as good, and lme4's boundary step: parameters that end within 1e-5 of their
bound are put on it when that does not make the objective worse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import nlopt
import numpy as np

from service.stats.design.types import FloatArray
from service.stats.lmm.objective import Objective

OPTIMIZER_NAME = "bobyqa (nlopt)"
_FTOL_ABS = 1e-10
_XTOL_ABS = 1e-9
_MAX_EVALUATIONS = 100_000
_BOUNDARY_TOL = 1e-5  # lme4's lmerControl(boundary.tol)


@dataclass(frozen=True)
class Optimum:
    """The optimizer's summary (after MixedModels.jl's OptSummary)."""

    theta: FloatArray
    objective: float
    initial_objective: float
    evaluations: int
    return_code: str
    messages: tuple[str, ...]


def _stop_reason(code: int) -> str:
    names = {
        nlopt.SUCCESS: "SUCCESS", nlopt.STOPVAL_REACHED: "STOPVAL_REACHED",
        nlopt.FTOL_REACHED: "FTOL_REACHED", nlopt.XTOL_REACHED: "XTOL_REACHED",
        nlopt.MAXEVAL_REACHED: "MAXEVAL_REACHED", nlopt.MAXTIME_REACHED: "MAXTIME_REACHED",
    }
    return names.get(code, str(code))


def minimize_theta(objective: Objective, start: FloatArray, lower: FloatArray,
                   initial_step: FloatArray | None = None, ftol_abs: float = _FTOL_ABS,
                   ) -> Optimum:
    """Minimize ``objective`` over θ from ``start`` subject to θ ≥ ``lower``.

    Parameters
    ----------
    objective
        The profiled objective (counts its evaluations).
    start, lower
        Starting point and lower bounds (``-inf`` for unbounded elements).
    initial_step
        BOBYQA's initial trust-region radius per element (nlopt's default if None).
    ftol_abs
        Stop when an iteration improves the objective by less than this.

    Returns
    -------
    Optimum
        The best point seen (nlopt may stop with a round-off status after it has found it).
    """
    start = np.asarray(start, dtype=np.float64)
    k = len(start)
    best_value = [math.inf]
    best_theta = [start.copy()]

    def tracked(x: FloatArray, grad: FloatArray) -> float:
        value = objective(x)
        if value < best_value[0]:
            best_value[0] = value
            best_theta[0] = np.array(x, dtype=np.float64)
        # nlopt cannot use inf; a huge finite value steers BOBYQA away instead
        return value if math.isfinite(value) else 1e300

    initial = objective(start)
    if not math.isfinite(initial):
        raise np.linalg.LinAlgError("the objective is not finite at the starting point")
    opt = nlopt.opt(nlopt.LN_BOBYQA, k)
    opt.set_lower_bounds(lower.tolist())
    opt.set_min_objective(tracked)
    opt.set_ftol_abs(ftol_abs)
    if initial_step is not None:
        opt.set_initial_step(initial_step.tolist())
    opt.set_xtol_abs(_XTOL_ABS)
    opt.set_maxeval(_MAX_EVALUATIONS)
    messages: list[str] = []
    try:
        opt.optimize(start.tolist())
        code = _stop_reason(opt.last_optimize_result())
    except nlopt.RoundoffLimited:
        # BOBYQA's trust region has shrunk to round-off: the best point seen is the optimum
        code = "ROUNDOFF_LIMITED"
    except (RuntimeError, ValueError) as error:
        code = "FAILURE"
        messages.append(f"the optimizer stopped early ({error}); the best point seen is reported")
    if code == "MAXEVAL_REACHED":
        messages.append(f"maximum number of function evaluations ({_MAX_EVALUATIONS}) reached")
    theta = best_theta[0]
    value = best_value[0]
    theta, value = _snap_to_boundary(objective, theta, value, lower)
    return Optimum(theta=theta, objective=value, initial_objective=initial,
                   evaluations=objective.evaluations, return_code=code,
                   messages=tuple(messages))


def ml_refit_deviance(objective: Objective, theta: FloatArray) -> float:
    """The ML deviance of the model refitted by ML from the REML estimate, as lme4's
    ``deviance(refitML(fit))`` (what ``anova`` compares).

    An optimization with the fit's own tolerances, started at θ̂_REML as ``refitML``
    starts: a shortcut (a Newton step and a loose stop) left it 4e-3 short of lme4's.

    Parameters
    ----------
    objective
        The ML objective of the design (in the optimizer's parametrization).
    theta
        The REML estimate in that parametrization.

    Returns
    -------
    float
        The minimized profiled ML deviance.
    """
    # The ML optimum is near the REML one: a first trust region of 5% of θ (θ is of order
    # one in standardized coordinates) saves ~40% of the evaluations at full tolerance
    # (measured: within 1e-9 of lme4's refit on the reference cases).
    step = np.maximum(0.05 * np.abs(theta), 0.01)
    lower = objective.cp.lower_bounds()
    return minimize_theta(objective, theta, lower, initial_step=step).objective


def _snap_to_boundary(objective: Objective, theta: FloatArray, value: float,
                      lower: FloatArray) -> tuple[FloatArray, float]:
    near = np.isfinite(lower) & (theta - lower < _BOUNDARY_TOL) & (theta != lower)
    if not near.any():
        return theta, value
    candidate = theta.copy()
    candidate[near] = lower[near]
    candidate_value = objective(candidate)
    if candidate_value <= value:
        return candidate, candidate_value
    return theta, value
