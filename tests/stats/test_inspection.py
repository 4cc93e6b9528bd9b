"""Residuals and plot inputs of stored fits, through the real parser, design and engines.

Fitted values are compared with R's (tests/data/expected): 1e-6 relative for lm, whose
estimates match R to ~1e-12; 1e-5 for the mixed models, whose estimates come from an
optimizer and match lme4 to about 1e-6 (the mixed-model issue's tolerance).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from service.stats.design import build_design
from service.stats.errors import StatsError
from service.stats.formula import parse_formula
from service.stats.inspection import model_plot_data, model_residuals, numeric_predictors
from service.stats.lmlist import fit_by_group
from service.stats.lmm import fit_lmm
from service.stats.ols import fit_ols
from service.stats.plots import render_plot
from service.stats.results import FitResult
from tests.stats.test_diagnostics import R_BPTEST, R_RESID_SD_BY_STATE
from tests.stats.test_ols import DATA, expected
from tests.stats.test_plots import assert_png, assert_svg


def fit(text: str, file: str, method: str = "REML") -> tuple[FitResult, pd.DataFrame]:
    data = pd.read_csv(DATA / file)
    formula = parse_formula(text)
    if formula.kind == "lm_by_group":
        return fit_by_group(formula, data), data
    design = build_design(formula, data)
    if formula.kind == "lm":
        return fit_ols(design), data
    return fit_lmm(design, "ML" if method == "ML" else "REML"), data


def test_lm_residuals_by_an_outside_group_match_r() -> None:
    result, data = fit("Mood ~ Exercise", "mood.csv")
    res = model_residuals(parse_formula("Mood ~ Exercise"), data, result,
                          group_columns=["State"])
    np.testing.assert_allclose(res.table["fitted"], expected("mood_lm")["fitted"], rtol=1e-6)
    assert res.group_columns == ("State",)
    sds = dict(zip(res.spread["level"], res.spread["residual_sd"], strict=True))
    assert sds == pytest.approx(R_RESID_SD_BY_STATE, rel=1e-8)
    statistic, df, p_value = R_BPTEST[("mood.csv", "Mood", "Exercise", None)]
    assert res.breusch_pagan is not None and res.breusch_pagan.df == df
    assert res.breusch_pagan.statistic == pytest.approx(statistic, rel=1e-8)
    assert res.population is None


@pytest.mark.parametrize(
    ("case", "method"),
    [("mood_lmer_ml", "ML"), ("sleepstudy_uncorr", "REML")],
)
def test_lmm_fitted_values_include_the_conditional_modes(case: str, method: str) -> None:
    ref = expected(case)
    result, data = fit(ref["formula"], ref["dataset"], method)
    res = model_residuals(parse_formula(ref["formula"]), data, result)
    np.testing.assert_allclose(res.table["fitted"], ref["fitted"], rtol=1e-5)
    assert float(np.sqrt(np.mean(res.table["residual"] ** 2))) == pytest.approx(ref["rmse"],
                                                                                rel=1e-5)
    np.testing.assert_allclose(res.table["std_residual"],
                               res.table["residual"] / result.residual_std_dev, rtol=1e-12)
    group = next(iter(ref["n_groups"]))
    assert group in res.group_columns
    assert list(res.spread["level"]) == sorted(ref["ranef"][group], key=str)
    assert res.breusch_pagan is None
    # The population line is X β̂ alone.
    assert res.population is not None and len(res.population) == len(data)
    beta = ref["fixef"]
    numeric = numeric_predictors(parse_formula(ref["formula"]), data)[0]
    np.testing.assert_allclose(res.population,
                               beta["(Intercept)"] + beta[numeric] * data[numeric], rtol=1e-5)


def test_by_group_residuals_and_plots() -> None:
    text = "Mood ~ Exercise | State"
    result, data = fit(text, "mood.csv")
    res = model_residuals(parse_formula(text), data, result)
    assert res.group_columns == ("State",)
    assert len(res.table) == 200
    plot = model_plot_data(parse_formula(text), data, result, model_label=text)
    assert plot.available == ["residuals_vs_fitted", "residuals_by_group", "qq",
                              "fitted_lines"]
    assert plot.line_group_name == "State"
    for name in plot.available:
        assert_png(render_plot(name, plot, "png"))


def test_lm_with_a_factor_draws_one_line_per_level() -> None:
    text = "Mood ~ Exercise + State"
    result, data = fit(text, "mood.csv")
    plot = model_plot_data(parse_formula(text), data, result, model_label=text)
    assert plot.x_name == "Exercise" and plot.n_numeric_predictors == 1
    assert plot.line_group_name == "State"
    assert plot.available == ["residuals_vs_fitted", "qq", "fitted_lines"]
    grouped = model_plot_data(parse_formula(text), data, result, model_label=text,
                              group_column="State")
    assert "residuals_by_group" in grouped.available
    assert_svg(render_plot("fitted_lines", grouped, "svg"), text)


def test_lmm_plot_data_renders_every_plot() -> None:
    ref = expected("sleepstudy_reml")
    result, data = fit(ref["formula"], ref["dataset"])
    plot = model_plot_data(parse_formula(ref["formula"]), data, result,
                           model_label=f"{ref['formula']} (REML)")
    assert plot.available == ["residuals_vs_fitted", "residuals_by_group", "qq",
                              "fitted_lines", "caterpillar"]
    assert plot.group_name == "Subject" and plot.line_group_name == "Subject"
    for name in plot.available:
        assert_png(render_plot(name, plot, "png"))


def test_numeric_predictors_skip_factors() -> None:
    data = pd.read_csv(DATA / "mood.csv")
    assert numeric_predictors(parse_formula("Mood ~ Exercise * State"), data) == ["Exercise"]
    assert numeric_predictors(parse_formula("Mood ~ State"), data) == []
    assert numeric_predictors(parse_formula("Mood ~ log(Exercise + 1) + factor(State)"),
                              data) == ["Exercise"]


def test_unknown_group_column_is_refused() -> None:
    result, data = fit("Mood ~ Exercise", "mood.csv")
    with pytest.raises(StatsError, match="not present"):
        model_residuals(parse_formula("Mood ~ Exercise"), data, result, group_columns=["X"])
