"""The mixed-model engine: lme4's penalized least squares with a blocked Cholesky factor.

The fit follows lme4's four named steps: the design (built elsewhere) -> the objective
(``structure.cross_products`` + ``objective.Objective``) -> the optimizer
(``optimize.minimize_theta``) -> the result (``package.make_result``).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from service.stats.design.types import Design, FloatArray
from service.stats.errors import FitError
from service.stats.lmm.derivatives import VarianceDerivatives, variance_derivatives
from service.stats.lmm.factor import update_factor
from service.stats.lmm.objective import Method, Objective
from service.stats.lmm.optimize import Optimum, minimize_theta, ml_refit_deviance
from service.stats.lmm.package import SINGULAR_TOL, make_result
from service.stats.lmm.parametrization import (
    Parametrization,
    ReparametrizedObjective,
    preferred_kinds,
)
from service.stats.lmm.standardize import Standardization, standardize
from service.stats.lmm.structure import CrossProducts, cross_products
from service.stats.lmm.user_units import objective_offset, to_user_units
from service.stats.results import FitResult
from service.stats.threads import single_threaded_blas

__all__ = ["fit_lmm", "fitted_values"]


def fit_lmm(design: Design, method: Method = "REML") -> FitResult:
    """Fit a linear mixed-effects model by REML or ML, with lme4's numbers.

    Parameters
    ----------
    design
        Response, fixed-effects matrix (full column rank) and random-effects blocks.
    method
        ``"REML"`` (lme4's default) or ``"ML"``.

    Returns
    -------
    FitResult
        ``kind="lmm"``; fixed effects with Satterthwaite df (lmerTest), variance
        components and conditional modes in lme4's term order, metrics and convergence.

    Raises
    ------
    FitError
        If the design cannot be fitted (no random effects, too few rows, a singular
        fixed-effects matrix).
    """
    started = time.perf_counter()
    if method not in ("REML", "ML"):
        raise FitError(f"method must be 'REML' or 'ML', not {method!r}")
    n, p = design.X.shape
    if n <= p:
        raise FitError(f"{n} rows are too few for {p} fixed-effects coefficients.")
    if design.y is None:
        raise FitError("A mixed model needs a response; the design has none.")
    if not design.random:
        raise FitError("A mixed model needs at least one random-effects term such as (1 | g).")
    with single_threaded_blas():
        standardized, scaling = standardize(design)
        cp = cross_products(standardized)
        try:
            parametrization, optimum = _optimize(cp, standardized, scaling, method)
            factor = update_factor(cp, parametrization.standardized(optimum.theta))
        except np.linalg.LinAlgError as error:
            raise FitError(
                "The mixed model cannot be fitted: the fixed-effects matrix is rank deficient "
                "or the response has no variation.") from error
        theta_tilde = parametrization.standardized(optimum.theta)
        derivs = variance_derivatives(cp, theta_tilde, method)
        polished = _polish(cp, method, parametrization, optimum, derivs)
        if polished is not None:
            optimum, derivs = polished
            parametrization = Parametrization("centred", cp, standardized, scaling)
            factor = update_factor(cp, optimum.theta)
        ml_deviance = (optimum.objective if method == "ML" else ml_refit_deviance(
            ReparametrizedObjective(cp, "ML", parametrization), optimum.theta))
        solution = to_user_units(design, standardized, scaling, cp, factor, optimum, method,
                                 parametrization, derivs.covariance)
        user_derivs = replace(
            derivs, covariance=solution.covariance,
            cov_gradient=np.stack([scaling.fixed_covariance(g) for g in derivs.cov_gradient]))
        ml_deviance += objective_offset(scaling, cp, "ML")
        return make_result(design, cp, method, optimum, solution, user_derivs, ml_deviance,
                           fit_seconds=time.perf_counter() - started)


def _needs_another_start(optimum: Optimum, parametrization: Parametrization) -> bool:
    """A boundary fit (where the objective may have several optima) or an optimizer in
    trouble: worth a second run in the other parametrization."""
    if optimum.messages or optimum.return_code in ("FAILURE", "MAXEVAL_REACHED"):
        return True
    diagonals = [np.diagonal(t) for t in parametrization.user_factors(optimum.theta)]
    return bool(np.any(np.concatenate(diagonals) < SINGULAR_TOL))


# Newton steps longer than this (relative to 1 + |θ̃|) are not local corrections
_MAX_POLISH_STEP = 0.05
_POLISH_GAIN = 1e-10


def _polish(cp: CrossProducts, method: Method, parametrization: Parametrization,
            optimum: Optimum, derivs: VarianceDerivatives,
            ) -> tuple[Optimum, VarianceDerivatives] | None:
    """Newton steps on the profiled objective from BOBYQA's optimum, when it is interior.

    BOBYQA stops when its trust region is small, which leaves a weakly determined
    parameter (a variance near zero, a flat direction) a little off the optimum: the
    derivatives taken for Satterthwaite's df give the Newton step that finishes the job.
    A step is kept only if the Hessian is positive definite, the step is short and the
    objective decreases. Returns the optimum in standardized coordinates (θ̃) and the
    derivatives there, or None if no step was taken.
    """
    user = parametrization.user_factors(optimum.theta)
    if np.any(np.concatenate([np.diagonal(t) for t in user]) < SINGULAR_TOL):
        return None  # a boundary fit: the free directions are not all of θ
    objective = Objective(cp, method)
    theta = parametrization.standardized(optimum.theta)
    value = optimum.objective
    diagonal = np.concatenate([t.diagonal_theta() for t in cp.terms])
    taken = False
    for _ in range(3):
        try:
            np.linalg.cholesky(derivs.profiled_hessian)
        except np.linalg.LinAlgError:
            break
        step = -np.linalg.solve(derivs.profiled_hessian, derivs.profiled_gradient)
        # the decrease a Newton step promises: below 1e-10 BOBYQA has finished the job
        if -0.5 * float(derivs.profiled_gradient @ step) < _POLISH_GAIN:
            break
        if (not np.all(np.isfinite(step))
                or np.linalg.norm(step) > _MAX_POLISH_STEP * (1.0 + np.linalg.norm(theta))):
            break
        candidate = theta + step
        if np.any(candidate[diagonal] < 0.0):
            break
        candidate_value = objective(candidate)
        if not candidate_value < value:
            break
        gain = value - candidate_value
        theta, value, taken = candidate, candidate_value, True
        derivs = variance_derivatives(cp, theta, method)
        if gain < _POLISH_GAIN:
            break
    if not taken:
        return None
    polished = replace(optimum, theta=theta, objective=value,
                       evaluations=optimum.evaluations + objective.evaluations)
    return polished, derivs


def _optimize(cp: CrossProducts, standardized: Design, scaling: Standardization,
              method: Method) -> tuple[Parametrization, Optimum]:
    """Minimize the objective in the preferred parametrization (``parametrization``), and
    in the other one too when the first run ends on a boundary or in trouble; the better
    optimum wins (ties go to the first)."""
    first_kind, second_kind = preferred_kinds(scaling)
    first = Parametrization(first_kind, cp, standardized, scaling)
    optimum = minimize_theta(ReparametrizedObjective(cp, method, first), cp.initial_theta(),
                             cp.lower_bounds())
    if first.coincides_with_centred or not _needs_another_start(optimum, first):
        return first, optimum
    second = Parametrization(second_kind, cp, standardized, scaling)
    other = minimize_theta(ReparametrizedObjective(cp, method, second), cp.initial_theta(),
                           cp.lower_bounds())
    evaluations = optimum.evaluations + other.evaluations
    if other.objective < optimum.objective:
        return second, replace(other, evaluations=evaluations,
                               initial_objective=optimum.initial_objective)
    return first, replace(optimum, evaluations=evaluations)


def fitted_values(design: Design, result: FitResult,
                  include_random_effects: bool = True) -> FloatArray:
    """Xβ̂ + Zb̂ for the rows of ``design``; unseen levels (code -1) contribute 0.

    Parameters
    ----------
    design
        The fitting design or a prediction design built by the same encoder.
    result
        A fit of that design.
    include_random_effects
        False for the population prediction (R's ``re.form = NA``).

    Returns
    -------
    numpy.ndarray
    """
    beta = np.array([fe.estimate for fe in result.fixed_effects])
    values = np.asarray(design.X @ beta, dtype=np.float64)
    if not include_random_effects:
        return values
    modes = {(cm.group, cm.terms): cm for cm in result.conditional_modes}
    for block in design.random:
        cm = modes[(block.group, block.terms)]
        table = np.zeros((len(cm.levels) + 1, len(cm.terms)))  # last row: unseen levels
        table[:-1] = np.asarray(cm.modes, dtype=np.float64).reshape(len(cm.levels), -1)
        lookup = {level: i for i, level in enumerate(cm.levels)}
        if tuple(block.levels) == tuple(cm.levels):
            codes = np.where(block.codes >= 0, block.codes, len(cm.levels))
        else:
            remap = np.array([lookup.get(level, len(cm.levels)) for level in block.levels]
                             + [len(cm.levels)], dtype=np.intp)
            codes = remap[block.codes]  # -1 picks the final entry: unseen
        values += np.einsum("ra,ra->r", block.covariates, table[codes])
    return values
