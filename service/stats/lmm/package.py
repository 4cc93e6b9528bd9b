"""Step four (lme4's ``mkMerMod``): package the optimum into a complete ``FitResult``."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy import stats

from service.stats import tdist
from service.stats.design.types import Design, FloatArray, RandomBlock
from service.stats.lmm.derivatives import (
    VarianceDerivatives,
    hessian_messages,
    satterthwaite_df,
)
from service.stats.lmm.objective import Method
from service.stats.lmm.optimize import OPTIMIZER_NAME, Optimum
from service.stats.lmm.structure import CrossProducts
from service.stats.results import (
    ConditionalModes,
    Convergence,
    Covariance,
    FitResult,
    FixedEffect,
    Metrics,
    RandomEffectsTerm,
)

SINGULAR_TOL = 1e-4  # lme4's isSingular(tol)
GRADIENT_TOL = 2e-3  # lme4's check.conv.grad tolerance
HESSIAN_TOL = 1e-6  # lme4's check.conv.hess tolerance
_Z_975 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True, eq=False)
class Solution:
    """The optimum in the user's units, terms in lme4's order (``cp.terms``).

    The fit itself runs in standardized coordinates (``standardize``); everything here
    has been mapped back: θ and T as lme4 reports them, β̂ and its covariance, σ̂,
    conditional modes and their covariances, and the objective.
    """

    theta: FloatArray
    relative_factors: tuple[FloatArray, ...]
    blocks: tuple[RandomBlock, ...]
    beta: FloatArray
    covariance: FloatArray
    sigma: float
    modes: list[FloatArray]
    conditional_covariances: list[FloatArray]
    objective: float
    initial_objective: float


def is_singular(cp: CrossProducts, theta: FloatArray) -> bool:
    """lme4's ``isSingular``: a diagonal element of some T below 1e-4."""
    diagonal = np.concatenate([t.diagonal_theta() for t in cp.terms])
    return bool(np.any(theta[diagonal] < SINGULAR_TOL))


def _hessian_check(hessian: FloatArray) -> tuple[bool, list[str]]:
    """lme4's ``checkHess`` (tol 1e-6) on the Hessian of the profiled objective."""
    values = np.linalg.eigvalsh(hessian)
    negative = int(np.sum(values < -HESSIAN_TOL))
    if negative:
        return False, [f"Model failed to converge: degenerate Hessian with {negative} "
                       "negative eigenvalues"]
    try:
        np.linalg.cholesky(hessian)
        factorable = True
    except np.linalg.LinAlgError:
        factorable = False
    if np.any(np.abs(values) < HESSIAN_TOL) or not factorable:
        return False, ["Hessian is numerically singular: parameters are not uniquely "
                       "determined"]
    return True, []


def convergence_messages(derivs: VarianceDerivatives, singular: bool,
                         ) -> tuple[bool, list[str]]:
    """lme4's ``checkConv`` (1.1-31), then lmerTest's warnings on the Hessian in (θ, σ).

    A singular fit gets lme4's boundary note and no gradient or Hessian check, as in lme4.
    Otherwise, as lme4: the smaller of the scaled (Newton) and the absolute gradient
    against 0.002, then the eigenvalues of the Hessian (negative: not a minimum; near
    zero: a direction in which the parameters are not determined). The derivatives are
    those of the standardized fit (``standardize``), so the checks find real problems of
    the model and not the data's units: lme4's own "very large eigenvalue - Rescale
    variables?" notes are about its arithmetic in the user's units, which this engine
    never uses, and are not repeated.
    """
    if singular:
        return True, ["boundary (singular) fit: see help('isSingular')"]
    messages: list[str] = []
    converged = True
    gradient = derivs.profiled_gradient
    hessian = derivs.profiled_hessian
    try:
        upper = np.linalg.cholesky(hessian).T
        scaled = np.linalg.solve(upper, gradient)
    except np.linalg.LinAlgError:
        scaled = None
    if scaled is None or not np.all(np.isfinite(scaled)):
        converged = False
        messages.append("unable to evaluate scaled gradient")
    else:
        worst = np.minimum(np.abs(scaled), np.abs(gradient))
        if worst.max() > GRADIENT_TOL:
            converged = False
            messages.append(
                f"Model failed to converge with max|grad| = {worst.max():.6g} "
                f"(tol = {GRADIENT_TOL:g}, component {int(worst.argmax()) + 1})")
    hessian_ok, hessian_notes = _hessian_check(hessian)
    messages.extend(hessian_notes)
    lmertest_notes = hessian_messages(derivs)
    messages.extend(lmertest_notes)
    return converged and hessian_ok and not lmertest_notes, messages


def _random_effects_terms(cp: CrossProducts, solution: Solution,
                          ) -> tuple[RandomEffectsTerm, ...]:
    out = []
    seen: Counter[str] = Counter()
    for term, t in zip(cp.terms, solution.relative_factors, strict=True):
        # VarCorr's names (R's make.unique): the second term of Subject is Subject.1
        group = term.block.group
        name = group if not seen[group] else f"{group}.{seen[group]}"
        seen[group] += 1
        cov = solution.sigma**2 * (t @ t.T)
        variance = np.diag(cov)
        sd = np.sqrt(variance)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = cov / np.outer(sd, sd)
        # a zero standard deviation has no defined correlation; report 0 rather than NaN
        corr = np.where(np.isfinite(corr), corr, 0.0)
        np.fill_diagonal(corr, 1.0)
        out.append(RandomEffectsTerm(
            group=name, terms=term.block.terms,
            std_dev=tuple(float(v) for v in sd), variance=tuple(float(v) for v in variance),
            correlation=tuple(tuple(float(v) for v in row) for row in corr),
            n_levels=term.n_levels, covariance=_nested(cov)))
    return tuple(out)


def _conditional_modes(cp: CrossProducts, solution: Solution) -> tuple[ConditionalModes, ...]:
    out = []
    for term, b, cov in zip(cp.terms, solution.modes, solution.conditional_covariances,
                            strict=True):
        sd = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 0.0))
        out.append(ConditionalModes(
            group=term.block.group, terms=term.block.terms, levels=term.block.levels,
            modes=tuple(tuple(float(v) for v in row) for row in b),
            cond_sd=tuple(tuple(float(v) for v in row) for row in sd),
            cond_cov=tuple(_nested(level) for level in cov)))
    return tuple(out)


def _nested(square: FloatArray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in square)


def random_part(blocks: tuple[RandomBlock, ...], modes: list[FloatArray]) -> FloatArray:
    """Z b̂ over the fitting rows (``blocks`` and ``modes`` in the same order)."""
    total = np.zeros(blocks[0].codes.shape[0]) if blocks else np.zeros(0)
    for block, b in zip(blocks, modes, strict=True):
        total += np.einsum("ra,ra->r", block.covariates, b[block.codes])
    return total


def _r_squared(design: Design, solution: Solution) -> tuple[float, float]:
    """Nakagawa and Schielzeth's marginal and conditional R² (Johnson's slopes)."""
    linear = design.unweighted(design.X @ solution.beta)
    var_fixed = float(np.var(linear, ddof=1)) if len(linear) > 1 else 0.0
    var_random = 0.0
    sigma = solution.sigma
    for block, t in zip(solution.blocks, solution.relative_factors, strict=True):
        cov = sigma**2 * (t @ t.T)
        z = design.unweighted(block.covariates)
        mean_outer = z.T @ z / z.shape[0]
        var_random += float(np.sum(cov * mean_outer))
    total = var_fixed + var_random + sigma**2
    return var_fixed / total, (var_fixed + var_random) / total


def make_result(design: Design, cp: CrossProducts, method: Method, optimum: Optimum,
                solution: Solution, derivs: VarianceDerivatives,
                ml_deviance: float, fit_seconds: float) -> FitResult:
    """Assemble the ``FitResult`` of a mixed-model fit at θ̂.

    Parameters
    ----------
    design
        The user's design.
    cp
        The cross-products of the standardized design (term order and layout).
    method
        ``"REML"`` or ``"ML"``.
    optimum
        The optimizer's summary (standardized coordinates: evaluations, stop reason).
    solution
        The optimum in the user's units.
    derivs
        The derivatives at φ̂, with the covariance of β̂ and its derivatives already in
        the user's units (the Hessian stays in the standardized coordinates).
    ml_deviance
        The ML deviance to report (the converged ML refit's for a REML fit).
    fit_seconds
        Wall time of the fit.

    Returns
    -------
    FitResult
    """
    n = cp.n_obs
    p = cp.n_fixed
    theta = solution.theta
    beta = solution.beta
    sigma = solution.sigma
    se = np.sqrt(np.diag(solution.covariance))
    df = satterthwaite_df(derivs)
    fixed = []
    for j, name in enumerate(design.fixed_names):
        t_value = beta[j] / se[j]
        fixed.append(FixedEffect(
            term=name, estimate=float(beta[j]), std_error=float(se[j]),
            statistic=float(t_value), df=float(df[j]),
            p_value=tdist.two_sided_p(float(t_value), float(df[j])),
            conf_low=float(beta[j] - _Z_975 * se[j]),
            conf_high=float(beta[j] + _Z_975 * se[j])))

    assert design.y is not None
    residuals = design.unweighted(
        design.y - design.X @ beta - random_part(solution.blocks, solution.modes))
    npar = p + len(theta) + 1
    # lme4's objective subtracts Σ log(w) (its ldW) from that of the √w-scaled model
    objective = solution.objective - design.log_det_weights
    ml_deviance -= design.log_det_weights
    loglik = -objective / 2.0
    r2_marginal, r2_conditional = _r_squared(design, solution)
    metrics = Metrics(
        n_obs=n, loglik=loglik, aic=-2.0 * loglik + 2.0 * npar,
        bic=-2.0 * loglik + npar * math.log(n), deviance=ml_deviance, sigma=sigma,
        rmse=float(np.sqrt(np.mean(residuals**2))),
        # R's df.residual for a merMod: n minus every parameter (β, θ and σ)
        df_residual=float(n - npar),
        reml_criterion=objective if method == "REML" else None,
        r2_marginal=r2_marginal, r2_conditional=r2_conditional,
        n_dropped_missing=design.n_dropped_missing, npar=npar)

    singular = is_singular(cp, theta)
    converged, messages = convergence_messages(derivs, singular)
    messages = [*optimum.messages, *messages]
    convergence = Convergence(
        converged=converged and not optimum.messages, singular=singular,
        optimizer=OPTIMIZER_NAME, iterations=optimum.evaluations, messages=tuple(messages),
        initial_objective=solution.initial_objective - design.log_det_weights,
        final_objective=objective)
    return FitResult(
        kind="lmm", method=method, fixed_effects=tuple(fixed), metrics=metrics,
        convergence=convergence, residual_std_dev=sigma,
        random_effects=_random_effects_terms(cp, solution),
        conditional_modes=_conditional_modes(cp, solution),
        theta=tuple(float(v) for v in theta), fit_seconds=fit_seconds,
        messages=tuple(design.messages) + tuple(messages),
        vcov=Covariance.of(design.fixed_names, solution.covariance))
