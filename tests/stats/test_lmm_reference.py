"""The mixed-model engine against lme4 1.1.31 / lmerTest on every reference mixed model,
through the real parser and design builder.

Tolerances (issue 4), and why:
- log-likelihood no worse than lme4's by more than 2e-4: lme4's BOBYQA stops at about
  that precision; a better optimum is allowed.
- fixed effects within 1% of their standard error: a difference far below the estimate's
  own uncertainty, whatever the units.
- standard errors, standard deviations and sigma within 0.5% (relative): they move to
  first order with θ, so an optimum equal to 2e-4 in the objective leaves ~0.1-0.3%.
- conditional modes within 1% of their conditional SD; conditional SDs within 0.5%.
- Satterthwaite df within 2%: lmerTest differentiates numerically (numDeriv) too.
- REML criterion, deviance, AIC, BIC within 4e-4 absolute: twice the log-likelihood
  tolerance; R² within 0.005 (absolute: a derived ratio of variances).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from service.stats.design import build_design
from service.stats.design.types import Design
from service.stats.formula import parse_formula
from service.stats.lmm import fit_lmm, fitted_values
from service.stats.results import FitResult

DATA = Path(__file__).resolve().parents[1] / "data"


def _case_design(expected: dict[str, Any]) -> Design:
    frame = pd.read_csv(DATA / expected["dataset"])
    return build_design(parse_formula(expected["formula"]), frame)


CASES = ["sleepstudy_reml", "sleepstudy_ml", "sleepstudy_uncorr", "dyestuff_reml",
         "dyestuff2_singular", "penicillin_crossed", "pastes_nested", "cake_interaction",
         "mood_lmer_ml", "orthodont_slopes"]

_FITS: dict[str, tuple[Design, FitResult, dict[str, Any]]] = {}


def fitted_case(case: str) -> tuple[Design, FitResult, dict[str, Any]]:
    """Fit each reference case once per test session."""
    if case not in _FITS:
        expected = json.loads((DATA / "expected" / f"{case}.json").read_text())
        design = _case_design(expected)
        _FITS[case] = (design, fit_lmm(design, expected["method"]), expected)
    return _FITS[case]


def _relative(actual: float, expected: float) -> float:
    return abs(actual - expected) / abs(expected)


@pytest.mark.parametrize("case", CASES)
def test_loglik_no_worse_than_lme4(case: str) -> None:
    _, result, expected = fitted_case(case)
    # 2e-4: lme4's optimizer precision; a higher log-likelihood is a better optimum
    assert result.metrics.loglik >= expected["loglik"] - 2e-4
    assert result.method == expected["method"]
    assert result.kind == "lmm"
    assert result.metrics.n_obs == expected["n_obs"]


@pytest.mark.parametrize("case", CASES)
def test_fixed_effects_and_standard_errors(case: str) -> None:
    _, result, expected = fitted_case(case)
    assert [fe.term for fe in result.fixed_effects] == list(expected["fixef"])
    for fe in result.fixed_effects:
        se = expected["fixef_se"][fe.term]
        # 1% of the standard error: negligible next to the estimate's own uncertainty
        assert abs(fe.estimate - expected["fixef"][fe.term]) <= 0.01 * se
        # 0.5% relative: SEs move to first order with θ
        assert _relative(fe.std_error, se) <= 0.005
        assert _relative(fe.statistic, expected["t_value"][fe.term]) <= 0.01
        # Wald interval as confint(method = "Wald"): estimate ± qnorm(0.975) SE
        assert fe.conf_high - fe.estimate == pytest.approx(1.959963984540054 * fe.std_error)
        assert fe.estimate - fe.conf_low == pytest.approx(1.959963984540054 * fe.std_error)


@pytest.mark.parametrize("case", CASES)
def test_satterthwaite_df_and_p_values(case: str) -> None:
    _, result, expected = fitted_case(case)
    for fe in result.fixed_effects:
        # 2%: lmerTest's df come from numerical derivatives as well
        assert fe.df is not None
        assert _relative(fe.df, expected["satterthwaite_df"][fe.term]) <= 0.02
        p_expected = expected["p_value_satterthwaite"][fe.term]
        # p follows from t and df; within 5% relative (or 1e-6 absolute for large p)
        assert abs(fe.p_value - p_expected) <= max(0.05 * p_expected, 1e-6)


def _varcorr(expected: dict[str, Any]) -> tuple[list[dict[str, Any]], float]:
    rows = [r for r in expected["varcorr"] if r["group"] != "Residual"]
    residual = next(r for r in expected["varcorr"] if r["group"] == "Residual")
    return rows, float(residual["sdcor"])


@pytest.mark.parametrize("case", CASES)
def test_variance_components(case: str) -> None:
    _, result, expected = fitted_case(case)
    rows, sigma = _varcorr(expected)
    # 0.5% relative for sigma and standard deviations
    assert _relative(result.residual_std_dev, sigma) <= 0.005
    assert _relative(result.metrics.sigma, expected["sigma"]) <= 0.005
    sds = [r for r in rows if r["var2"] is None]
    cors = [r for r in rows if r["var2"] is not None]
    ours_sd = [(re.group, term, sd) for re in result.random_effects
               for term, sd in zip(re.terms, re.std_dev, strict=True)]
    assert len(ours_sd) == len(sds)
    for (group, term, sd), row in zip(ours_sd, sds, strict=True):
        # VarCorr's names: the second term of (x || g) is "g.1", as lme4 names it
        assert row["group"] == group
        assert row["var1"] == term
        if row["sdcor"] == 0:
            assert sd <= 1e-6 * sigma
        else:
            assert _relative(sd, row["sdcor"]) <= 0.005
    for row in cors:
        re = next(r for r in result.random_effects if r.group == row["group"])
        i, j = re.terms.index(row["var1"]), re.terms.index(row["var2"])
        # correlations: 0.005 absolute (a bounded quantity, first order in θ)
        assert abs(re.correlation[i][j] - row["sdcor"]) <= 0.005
    groups = {re.group.split(".")[0]: re.n_levels for re in result.random_effects}
    assert groups == expected["n_groups"]


@pytest.mark.parametrize("case", CASES)
def test_theta_and_singularity(case: str) -> None:
    _, result, expected = fitted_case(case)
    theta = np.atleast_1d(np.asarray(expected["theta"], dtype=float))
    # θ in lme4's order; 0.5% of the largest element (a flat optimum in a direction of
    # small θ is allowed)
    assert np.allclose(result.theta, theta, atol=0.005 * float(np.max(np.abs(theta)) or 1.0))
    assert result.convergence.singular == expected["singular"]
    assert result.convergence.optimizer == "bobyqa (nlopt)"
    assert result.convergence.iterations > 0
    assert result.convergence.final_objective == pytest.approx(-2 * result.metrics.loglik)
    if expected["singular"]:
        assert any("singular" in m for m in result.convergence.messages)
    else:
        assert result.convergence.converged
        assert result.convergence.messages == ()


@pytest.mark.parametrize("case", CASES)
def test_information_criteria(case: str) -> None:
    _, result, expected = fitted_case(case)
    m = result.metrics
    # twice the log-likelihood tolerance, on the -2 log L scale
    assert m.aic == pytest.approx(expected["aic"], abs=4e-4)
    assert m.bic == pytest.approx(expected["bic"], abs=4e-4)
    assert m.deviance == pytest.approx(expected["deviance_ml"], abs=4e-4)
    if expected["method"] == "REML":
        assert m.reml_criterion == pytest.approx(expected["reml_criterion"], abs=4e-4)
    else:
        assert m.reml_criterion is None
    n_theta = len(np.atleast_1d(expected["theta"]))
    assert m.npar == len(expected["fixef"]) + n_theta + 1
    # R's df.residual(merMod): n minus every parameter (174 for sleepstudy's (Days | Subject))
    assert m.df_residual == expected["n_obs"] - m.npar


@pytest.mark.parametrize("case", CASES)
def test_r_squared(case: str) -> None:
    _, result, expected = fitted_case(case)
    # 0.005 absolute: a ratio of variance components. performance leaves out the extra
    # term of (x || g) (LMM-NOTES.md), and gives NA for singular fits: skip those.
    if case == "sleepstudy_uncorr":
        assert result.metrics.r2_conditional is not None
        return
    assert result.metrics.r2_marginal == pytest.approx(expected["r2_marginal"], abs=0.005)
    if expected["r2_conditional"] != "NA" and expected["r2_conditional"] is not None:
        assert result.metrics.r2_conditional == pytest.approx(expected["r2_conditional"],
                                                              abs=0.005)


@pytest.mark.parametrize("case", CASES)
def test_conditional_modes(case: str) -> None:
    _, result, expected = fitted_case(case)
    # ranef's names: one grouping factor (Subject) for all of its terms, where VarCorr
    # says Subject and Subject.1
    assert [cm.group for cm in result.conditional_modes] == [
        re.group.split(".")[0] for re in result.random_effects]
    for group, levels in expected["ranef"].items():
        terms_here = [cm for cm in result.conditional_modes if cm.group == group]
        assert terms_here, group
        for level, values in levels.items():
            for term, value in values.items():
                cm = next(c for c in terms_here if term in c.terms)
                i, j = cm.levels.index(level), cm.terms.index(term)
                cond_sd = expected["ranef_condsd"][group][level][term]
                # 1% of the conditional SD; the SD itself within 0.5%
                assert abs(cm.modes[i][j] - value) <= 0.01 * max(cond_sd, 1e-8) + 1e-9
                if cond_sd > 0:
                    assert _relative(cm.cond_sd[i][j], cond_sd) <= 0.005


@pytest.mark.parametrize("case", CASES)
def test_fitted_values_and_rmse(case: str) -> None:
    design, result, expected = fitted_case(case)
    sigma = expected["sigma"]
    fitted = fitted_values(design, result)
    # predictions within 1e-3 sigma (issue 4)
    assert np.max(np.abs(fitted - np.asarray(expected["fitted"]))) <= 1e-3 * sigma
    assert _relative(result.metrics.rmse, expected["rmse"]) <= 0.005
    fixed_only = fitted_values(design, result, include_random_effects=False)
    beta = np.array([fe.estimate for fe in result.fixed_effects])
    assert np.allclose(fixed_only, design.X @ beta)
