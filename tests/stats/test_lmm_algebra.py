"""The blocked factorization against direct dense linear algebra on small random designs.

The reference models cover scalar terms beyond the first only; these designs also put
vector-valued terms (q = 2) after the first, and a vector term first with scalar terms
after it, so every path of the blocked Cholesky is compared with the textbook formulas
(V = I + ZΛΛ'Z', GLS β̂, |V| = |Λ'Z'ZΛ + I|). Agreement is to 1e-8 relative: both are
exact computations in double precision on well-conditioned matrices.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.stats.design.types import Design, FloatArray, RandomBlock
from service.stats.errors import FitError
from service.stats.lmm import fit_lmm, fitted_values
from service.stats.lmm.conditional import conditional_covariances, conditional_modes
from service.stats.lmm.factor import update_factor
from service.stats.lmm.objective import Method, Objective
from service.stats.lmm.structure import cross_products, lme4_order


def _block(rng: np.random.Generator, group: str, levels: int, q: int, n: int,
           x: FloatArray) -> RandomBlock:
    codes = rng.permutation(np.concatenate([np.arange(levels),
                                            rng.integers(0, levels, n - levels)]))
    covariates = np.column_stack([np.ones(n), x, x**2 - 1][:q])
    terms = ("(Intercept)", "x", "I(x^2)")[:q]
    return RandomBlock(group=group, terms=terms, levels=tuple(f"{group}{i}" for i in range(levels)),
                       codes=codes.astype(np.intp), covariates=covariates)


def _design(seed: int, shapes: list[tuple[int, int]], n: int = 240) -> Design:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    blocks = tuple(_block(rng, f"g{i}", levels, q, n, x) for i, (levels, q) in enumerate(shapes))
    y = 1.0 + 0.5 * x + rng.normal(size=n)
    for b in blocks:
        effects = rng.normal(scale=0.7, size=(b.n_levels, b.q))
        y += np.einsum("ra,ra->r", b.covariates, effects[b.codes])
    X = np.column_stack([np.ones(n), x, rng.normal(size=n)])
    return Design(y=y, X=X, fixed_names=("(Intercept)", "x", "z"), random=blocks,
                  rows=np.arange(n, dtype=np.intp), response_name="y",
                  encoder=None)  # type: ignore[arg-type]


SHAPES = {
    "single vector term": [(12, 2)],
    "crossed scalar terms": [(15, 1), (6, 1), (3, 1)],
    "vector term first, scalars after": [(14, 2), (5, 1)],
    "scalar first, vector after": [(20, 1), (6, 2)],
    "two crossed vector terms": [(10, 2), (7, 2)],
    "three-column term first, vector after": [(16, 3), (6, 2)],
    "vector first, three-column term after": [(16, 2), (8, 3)],
}


def _dense_z_lambda(design: Design, theta: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Z and Λθ as dense matrices, terms in lme4's order."""
    blocks = lme4_order(design.random)
    n = design.n_obs
    z_parts, lam_parts = [], []
    start = 0
    for b in blocks:
        z = np.zeros((n, b.n_levels * b.q))
        for a in range(b.q):
            z[np.arange(n), b.codes * b.q + a] = b.covariates[:, a]
        t = np.zeros((b.q, b.q))
        rows, cols = np.triu_indices(b.q)
        k = len(rows)
        t[cols, rows] = theta[start:start + k]
        start += k
        z_parts.append(z)
        lam_parts.append(np.kron(np.eye(b.n_levels), t))
    total = sum(p.shape[1] for p in z_parts)
    lam = np.zeros((total, total))
    offset = 0
    for part in lam_parts:
        size = part.shape[0]
        lam[offset:offset + size, offset:offset + size] = part
        offset += size
    return np.hstack(z_parts), lam


def _random_theta(design: Design, rng: np.random.Generator) -> FloatArray:
    values: list[float] = []
    for b in lme4_order(design.random):
        t = np.tril(rng.normal(scale=0.5, size=(b.q, b.q)))
        t[np.diag_indices(b.q)] = rng.uniform(0.3, 1.5, size=b.q)
        rows, cols = np.triu_indices(b.q)
        values.extend(t[cols, rows])
    return np.array(values)


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_objective_equals_the_dense_formula(name: str, method: Method) -> None:
    design = _design(7, SHAPES[name])
    rng = np.random.default_rng(3)
    theta = _random_theta(design, rng)
    z, lam = _dense_z_lambda(design, theta)
    assert design.y is not None
    X, y = design.X, design.y
    n, p = X.shape
    zl = z @ lam
    v = np.eye(n) + zl @ zl.T
    v_inv = np.linalg.inv(v)
    xtvx = X.T @ v_inv @ X
    beta: FloatArray = np.asarray(np.linalg.solve(xtvx, X.T @ v_inv @ y), dtype=np.float64)
    resid = y - X @ beta
    r2 = float(resid @ v_inv @ resid)
    logdet_v = np.linalg.slogdet(v)[1]
    if method == "ML":
        expected = logdet_v + n * (1 + math.log(2 * math.pi * r2 / n))
    else:
        expected = (logdet_v + np.linalg.slogdet(xtvx)[1]
                    + (n - p) * (1 + math.log(2 * math.pi * r2 / (n - p))))
    cp = cross_products(design)
    # 1e-8 relative: both sides are exact in double precision
    assert Objective(cp, method)(theta) == pytest.approx(expected, rel=1e-8)
    factor = update_factor(cp, theta)
    assert factor.fixed_effects() == pytest.approx(beta, rel=1e-8, abs=1e-10)
    assert factor.penalized_rss == pytest.approx(r2, rel=1e-8)

    # conditional modes b̂ = ΛΛ'Z'V⁻¹(y − Xβ̂); their covariance σ²Λ(Λ'Z'ZΛ + I)⁻¹Λ'
    b_dense = lam @ zl.T @ v_inv @ resid
    sigma = 1.7
    cov_dense = sigma**2 * lam @ np.linalg.inv(zl.T @ zl + np.eye(zl.shape[1])) @ lam.T
    modes = conditional_modes(cp, factor, beta)
    covs = conditional_covariances(cp, factor, sigma)
    offset = 0
    for term, b, cov in zip(cp.terms, modes, covs, strict=True):
        size = term.n_columns
        assert b.ravel() == pytest.approx(b_dense[offset:offset + size], rel=1e-7, abs=1e-10)
        for level in range(term.n_levels):
            sl = slice(offset + level * term.q, offset + (level + 1) * term.q)
            assert cov[level] == pytest.approx(cov_dense[sl, sl], rel=1e-7, abs=1e-12)
        offset += size


@pytest.mark.parametrize("name", list(SHAPES))
def test_fit_is_a_stationary_point(name: str) -> None:
    design = _design(11, SHAPES[name])
    result = fit_lmm(design, "REML")
    cp = cross_products(design)
    objective = Objective(cp, "REML")
    theta = np.array(result.theta)
    best = objective(theta)
    assert result.convergence.final_objective == pytest.approx(best)
    # no coordinate step of 1e-3 improves the optimum by more than the 2e-4 slack
    for i in range(len(theta)):
        for step in (-1e-3, 1e-3):
            moved = theta.copy()
            moved[i] += step
            if moved[i] < cp.lower_bounds()[i]:
                continue
            assert objective(moved) >= best - 2e-4
    assert result.metrics.npar == 3 + len(theta) + 1
    assert [re.n_levels for re in result.random_effects] == sorted(
        (b.n_levels for b in design.random), reverse=True)


def test_fitted_values_give_unseen_levels_the_population_prediction() -> None:
    design = _design(5, [(12, 2)])
    result = fit_lmm(design, "ML")
    block = design.random[0]
    codes = block.codes.copy()
    codes[:10] = -1  # levels not seen in fitting
    unseen = RandomBlock(block.group, block.terms, block.levels, codes, block.covariates)
    new = Design(y=None, X=design.X, fixed_names=design.fixed_names, random=(unseen,),
                 rows=design.rows, response_name="y", encoder=None)  # type: ignore[arg-type]
    with_re = fitted_values(new, result)
    population = fitted_values(new, result, include_random_effects=False)
    assert with_re[:10] == pytest.approx(population[:10])
    assert with_re[10:] == pytest.approx(fitted_values(design, result)[10:])
    assert not np.allclose(with_re[10:], population[10:])


def test_a_design_without_random_effects_is_refused() -> None:
    design = _design(1, [(5, 1)])
    bare = Design(y=design.y, X=design.X, fixed_names=design.fixed_names, random=(),
                  rows=design.rows, response_name="y", encoder=None)  # type: ignore[arg-type]
    with pytest.raises(FitError, match="random-effects term"):
        fit_lmm(bare)


def test_too_few_rows_are_refused() -> None:
    design = _design(1, [(3, 1)], n=3)
    with pytest.raises(FitError, match="too few"):
        fit_lmm(design)


def test_a_vanishing_slope_variance_is_a_singular_converged_fit() -> None:
    # random intercepts only in the data; (x | g) drives the slope's T[1, 1] to its bound
    rng = np.random.default_rng(42)
    n, levels = 400, 20
    codes = np.arange(n) % levels
    x = rng.normal(size=n)
    y = 2.0 + x + rng.normal(scale=1.5, size=levels)[codes] + rng.normal(size=n)
    block = RandomBlock("g", ("(Intercept)", "x"), tuple(f"g{i}" for i in range(levels)),
                        codes.astype(np.intp), np.column_stack([np.ones(n), x]))
    design = Design(y=y, X=np.column_stack([np.ones(n), x]), fixed_names=("(Intercept)", "x"),
                    random=(block,), rows=np.arange(n, dtype=np.intp), response_name="y",
                    encoder=None)  # type: ignore[arg-type]
    result = fit_lmm(design, "REML")
    assert result.convergence.singular
    assert result.convergence.converged
    assert result.convergence.messages == ("boundary (singular) fit: see help('isSingular')",)
    assert result.theta[2] < 1e-4
    assert all(fe.df is not None and fe.df > 0 for fe in result.fixed_effects)


def test_a_model_without_fixed_effects_fits() -> None:
    design = _design(9, [(12, 1)])
    bare = Design(y=design.y, X=np.zeros((design.n_obs, 0)), fixed_names=(),
                  random=design.random, rows=design.rows, response_name="y",
                  encoder=None)  # type: ignore[arg-type]
    result = fit_lmm(bare, "ML")
    assert result.fixed_effects == ()
    assert math.isfinite(result.metrics.loglik)
    assert result.metrics.npar == len(result.theta) + 1


def test_a_constant_response_is_refused() -> None:
    design = _design(2, [(6, 1)])
    flat = Design(y=np.ones(design.n_obs), X=design.X[:, :1], fixed_names=("(Intercept)",),
                  random=design.random, rows=design.rows, response_name="y",
                  encoder=None)  # type: ignore[arg-type]
    with pytest.raises(FitError, match="no variation"):
        fit_lmm(flat)
