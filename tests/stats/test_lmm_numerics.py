"""The mixed-model engine's answers do not depend on the data's units (issue 8).

A response or covariate far from zero relative to its spread, or in tiny or huge units,
used to break the fit: Satterthwaite df off by 5% at y + 100σ and by a factor 12 at
y + 10⁴σ, wrong estimates at 10⁶ and an optimizer stuck at its start at 10⁷. Here every
affine change of units is applied to y and to x, and the fit's answers, mapped back, must
equal those of the unshifted fit within issue 4's tolerances (stated in
test_lmm_reference.py, with reasons): log-likelihood within 2e-4 (shifted by the
Jacobian of the change), estimates within 1% of their SE, SEs, SDs and σ within 0.5%, θ
within 0.5% of the largest θ of its term, Satterthwaite df within 2%. (Measured
agreement is about 1e-8.) References from lme4/lmerTest by tests/data/r/numerics.R.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from service.stats.design import build_design
from service.stats.formula import parse_formula
from service.stats.lmm import fit_lmm
from service.stats.lmm.standardize import lower_factor
from service.stats.results import FitResult

DATA = Path(__file__).resolve().parents[1] / "data"
EXPECTED: dict[str, Any] = json.loads((DATA / "expected" / "numerics.json").read_text())
FORMULA = "y ~ x + (1 + x | g)"


def _fit(formula: str, frame: pd.DataFrame, method: str) -> FitResult:
    return fit_lmm(build_design(parse_formula(formula), frame),
                   "ML" if method == "ML" else "REML")


@cache
def _shifted() -> pd.DataFrame:
    return pd.read_csv(DATA / "shifted.csv")


@cache
def _base(method: str) -> FitResult:
    return _fit(FORMULA, _shifted(), method)


def _theta_matrix(result: FitResult) -> np.ndarray:
    t = np.zeros((2, 2))
    t[[0, 1, 1], [0, 0, 1]] = result.theta
    return t


def _assert_same_fit(actual: FitResult, expected: FitResult, *, loglik_shift: float,
                     beta_map: np.ndarray, theta_map: np.ndarray, y_scale: float) -> None:
    """``actual`` is the fit of data in new units; ``expected`` the original fit mapped.

    x_new = a x + c and y_new = s y + d give β_new = s A⁻ᵀβ (+ d on the intercept), the
    random effects b_new = s B b with B = ``theta_map`` and θ_new = chol(B T Tᵀ Bᵀ).
    """
    assert actual.metrics.loglik == pytest.approx(expected.metrics.loglik + loglik_shift,
                                                  abs=2e-4)
    beta = np.array([fe.estimate for fe in expected.fixed_effects])
    cov_se = np.array([fe.std_error for fe in expected.fixed_effects])
    new_beta = np.array([fe.estimate for fe in actual.fixed_effects])
    new_se = np.array([fe.std_error for fe in actual.fixed_effects])
    mapped_se = np.abs(y_scale) * np.sqrt(np.diag(beta_map @ np.diag(cov_se**2) @ beta_map.T))
    # the intercept's SE after a shift of x involves the covariance of the estimates, so
    # only the slope's SE maps through the diagonal alone
    assert abs(new_beta[1] - (beta_map @ beta * y_scale)[1]) <= 0.01 * new_se[1]
    assert new_se[1] == pytest.approx(mapped_se[1], rel=5e-3)
    assert actual.residual_std_dev == pytest.approx(abs(y_scale) * expected.residual_std_dev,
                                                    rel=5e-3)
    t_new = lower_factor(theta_map @ _theta_matrix(expected))
    expected_theta = t_new[[0, 1, 1], [0, 0, 1]]
    assert np.allclose(actual.theta, expected_theta, rtol=0,
                       atol=5e-3 * np.abs(expected_theta).max())
    sd_new = np.abs(y_scale) * expected.residual_std_dev * np.sqrt(np.sum(t_new**2, axis=1))
    assert np.allclose(actual.random_effects[0].std_dev, sd_new, rtol=5e-3)
    # a shift of x makes the intercept another contrast (β0 − β1 c / a), with df of its own
    shifted_x = beta_map[0, 1] != 0.0
    for j, (new, old) in enumerate(zip(actual.fixed_effects, expected.fixed_effects,
                                       strict=True)):
        if not (j == 0 and shifted_x):
            assert new.df == pytest.approx(old.df, rel=0.02)
    assert actual.convergence.converged


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("shift", [1e2, 1e3, 1e4, 1e6, 1e7])
def test_response_shift_changes_only_the_intercept(method: str, shift: float) -> None:
    frame = _shifted().assign(y=lambda d: d.y + shift)  # σ ≈ 1: shifts of 10²σ to 10⁷σ
    actual = _fit(FORMULA, frame, method)
    base = _base(method)
    _assert_same_fit(actual, base, loglik_shift=0.0, beta_map=np.eye(2),
                     theta_map=np.eye(2), y_scale=1.0)
    assert actual.fixed_effects[0].estimate == pytest.approx(
        base.fixed_effects[0].estimate + shift, abs=0.01 * base.fixed_effects[0].std_error)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("scale", [1e6, 1e-6])
def test_response_units(method: str, scale: float) -> None:
    frame = _shifted().assign(y=lambda d: d.y * scale)
    actual = _fit(FORMULA, frame, method)
    base = _base(method)
    n_prime = base.metrics.n_obs - (2 if method == "REML" else 0)
    _assert_same_fit(actual, base, loglik_shift=-n_prime * math.log(scale),
                     beta_map=np.eye(2), theta_map=np.eye(2), y_scale=scale)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize(("a", "c"), [(1.0, 1e3), (1.0, 1e6), (1e6, 0.0), (1e-6, 0.0),
                                      (1e-4, 1e2), (1e6, 1e7), (1e-6, 1e-1)])
def test_covariate_units(method: str, a: float, c: float) -> None:
    """x → a x + c, in the fixed and the random part: the slope scales by 1/a and the
    intercept (the value at x = 0) moves along the line."""
    frame = _shifted().assign(x=lambda d: d.x * a + c)
    actual = _fit(FORMULA, frame, method)
    base = _base(method)
    # β_new = (β0 − β1 c / a, β1 / a); the same map carries each group's (b0, b1)
    mapping = np.array([[1.0, -c / a], [0.0, 1.0 / a]])
    loglik_shift = -math.log(abs(a)) if method == "REML" else 0.0  # log|R_X|² gains log a²
    _assert_same_fit(actual, base, loglik_shift=loglik_shift, beta_map=mapping,
                     theta_map=mapping, y_scale=1.0)


@pytest.mark.parametrize(("a", "c"), [(1.0, 1e8), (1e-4, 1e4)])
def test_covariate_collinear_with_the_intercept_is_dropped_as_r_drops_it(a: float,
                                                                         c: float) -> None:
    """A covariate whose spread is below 1e-7 of its size is, to R's ``qr(X, tol = 1e-7)``
    (lme4's ``chkRank.drop.cols``), a multiple of the intercept: lme4 drops it with its
    message, and so does mixedfit."""
    frame = _shifted().assign(x=lambda d: d.x * a + c)
    result = _fit(FORMULA, frame, "REML")
    assert [fe.term for fe in result.fixed_effects if not getattr(fe, "aliased", False)
            ] == ["(Intercept)"]
    assert any("rank deficient so dropping 1 column" in m for m in result.messages)


@pytest.mark.parametrize("case", ["sleepstudy_log_ml", "shifted_reml", "shifted_ml",
                                  "collinear_reml", "small45_reml", "sleepstudy_reml"])
def test_against_lme4(case: str) -> None:
    formulas = {
        "sleepstudy_log_ml": ("log(Reaction) ~ log(Days + 1) + (log(Days + 1) | Subject)",
                              "sleepstudy.csv", "ML"),
        "shifted_reml": (FORMULA, "shifted.csv", "REML"),
        "shifted_ml": (FORMULA, "shifted.csv", "ML"),
        "collinear_reml": ("y ~ x1 + x2 + (1 | g)", "collinear.csv", "REML"),
        "small45_reml": ("y ~ x + (x | g)", "small45.csv", "REML"),
        "sleepstudy_reml": ("Reaction ~ Days + (Days | Subject)", "sleepstudy.csv", "REML"),
    }
    formula, data, method = formulas[case]
    expected = EXPECTED[case]
    result = _fit(formula, pd.read_csv(DATA / data), method)
    assert result.metrics.loglik >= expected["loglik"] - 2e-4
    assert [fe.term for fe in result.fixed_effects] == list(expected["fixef"])
    for fe in result.fixed_effects:
        assert abs(fe.estimate - expected["fixef"][fe.term]) <= 0.01 * expected["se"][fe.term]
        assert fe.std_error == pytest.approx(expected["se"][fe.term], rel=5e-3)
        # the log model's df are 18.000 in lmerTest: asked to ±0.1%; others issue 4's 2%
        tolerance = 1e-3 if case == "sleepstudy_log_ml" else 0.02
        assert fe.df == pytest.approx(expected["df"][fe.term], rel=tolerance)
    assert np.allclose(result.theta, expected["theta"], rtol=5e-3, atol=1e-4)
    # a REML fit's deviance is a converged ML refit's, as deviance(refitML(fit)): 4e-4 is
    # issue 4's deviance tolerance (the shortcut it replaced was 3.9e-3 off on 45 rows)
    assert result.metrics.deviance == pytest.approx(expected["deviance_ml"], abs=4e-4)
    if expected["reml_criterion"] is not None:
        assert result.metrics.reml_criterion == pytest.approx(expected["reml_criterion"],
                                                              abs=4e-4)
    assert result.metrics.df_residual == expected["df_residual"]
    assert result.convergence.singular == expected["singular"]
    assert list(result.convergence.messages) == list(expected["messages"])
