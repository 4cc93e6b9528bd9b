"""Contrasts, offsets and prior weights in lm, lmer and lmList fits against R
(tests/data/r/weights_offsets_contrasts.R: R 4.x, lme4 1.1-31, lmerTest 3.1-3).

Tolerances, and why:
- lm and lmList: estimates, SEs, sigma, logLik, predictions to 1e-8 relative: both sides
  solve the same least squares problem by QR; only rounding differs.
- lmer: the optimum is found iteratively (our BOBYQA and Newton polish, lme4's BOBYQA).
  logLik, AIC, BIC and the REML criterion to 1e-6 absolute. Fixed effects, SEs, variance
  components and predictions to 2e-4 relative: lme4 stops with θ up to ~1e-4 (relative)
  from the optimum on the two-term sleepstudy fits (our logLik is higher, by 2e-7 on the
  weighted one), and SEs and SDs move to first order with θ; the one-parameter cake fits
  agree to 1e-8. At lme4's own θ the SEs agree to 1e-10 (``test_vcov_at_lme4s_theta``).
- lmerTest's anova tables: F and sums of squares to 1e-4 relative (they move with θ̂ as
  the SEs do), denominator df to 1e-3 relative (lmerTest differentiates numerically).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from service.stats.design import DesignEncoder, build_design
from service.stats.errors import ArgumentError, DesignError, FormulaError
from service.stats.fit import FittedModel, fit_model
from service.stats.formula import parse_formula
from service.stats.formula.tree import Formula, with_contrasts, with_weights
from service.stats.inference import InferenceError, lm_anova
from service.stats.inspection import model_residuals
from service.stats.lmm.at_optimum import stored_optimum
from service.stats.lmm_anova import lmm_anova
from service.stats.predict import predict
from service.stats.ranova import ranova

DATA = Path(__file__).resolve().parents[1] / "data"
EXPECTED = json.loads((DATA / "expected" / "weights_offsets_contrasts.json").read_text())
CASES: dict[str, dict[str, Any]] = EXPECTED["cases"]

LM_RTOL = 1e-8
LMER_RTOL = 2e-4
LOGLIK_ATOL = 1e-6


def case_data(name: str) -> pd.DataFrame:
    """The case's dataset with the columns the R script derives (sleepstudy's weight)."""
    frame = pd.read_csv(DATA / name)
    if name == "sleepstudy.csv":
        frame["w"] = 1 + (frame["Days"] % 3) / 2
    return frame


def our_formula(case: dict[str, Any]) -> str:
    return str(case["formula"])


def fit_case(case: dict[str, Any]) -> FittedModel:
    return fit_model(our_formula(case), case_data(case["dataset"]), case["method"] or "REML",
                     contrasts=case["contrasts"] or None, weights=case["weights"])


def case_formula(case: dict[str, Any]) -> Formula:
    return with_weights(with_contrasts(parse_formula(case["formula"]), case["contrasts"]),
                        case["weights"])


def selected(kind: str) -> list[str]:
    return [name for name, case in CASES.items()
            if case["kind"] == kind and "coefficients" in case]


def rtol(case: dict[str, Any]) -> float:
    return LM_RTOL if case["kind"] == "lm" else LMER_RTOL


@pytest.mark.parametrize("name", selected("lm") + selected("lmer"))
def test_coefficients_and_likelihood(name: str) -> None:
    case = CASES[name]
    result = fit_case(case).result
    tol = rtol(case)
    assert [fe.term for fe in result.fixed_effects] == [c["term"] for c in case["coefficients"]]
    for fe, want in zip(result.fixed_effects, case["coefficients"], strict=True):
        scale = max(abs(want["estimate"]), want["std_error"])  # sum contrasts give exact 0s
        assert abs(fe.estimate - want["estimate"]) <= tol * scale, fe.term
        assert fe.std_error == pytest.approx(want["std_error"], rel=tol), fe.term
    metrics = result.metrics
    assert metrics.n_obs == case["n_obs"]
    assert result.residual_std_dev == pytest.approx(case["sigma"], rel=tol)
    assert metrics.loglik == pytest.approx(case["loglik"], abs=LOGLIK_ATOL)
    assert metrics.aic == pytest.approx(case["aic"], abs=2 * LOGLIK_ATOL)
    assert metrics.bic == pytest.approx(case["bic"], abs=2 * LOGLIK_ATOL)
    if case.get("reml_criterion") is not None:
        assert metrics.reml_criterion == pytest.approx(case["reml_criterion"],
                                                       abs=2 * LOGLIK_ATOL)


@pytest.mark.parametrize("name", selected("lmer"))
def test_variance_components(name: str) -> None:
    case = CASES[name]
    result = fit_case(case).result
    ours = {(re.group, term): sd for re in result.random_effects
            for term, sd in zip(re.terms, re.std_dev, strict=True)}
    for want in case["varcorr"]:
        if want["group"] == "Residual":
            assert result.residual_std_dev == pytest.approx(want["sd"], rel=LMER_RTOL)
        else:
            assert ours[(want["group"], want["term"])] == pytest.approx(want["sd"],
                                                                        rel=LMER_RTOL)


@pytest.mark.parametrize("name", selected("lm") + selected("lmer"))
def test_predictions_code_new_data_alike(name: str) -> None:
    """New rows coded by the stored encoder after a JSON round trip, offsets added: R's
    predict(fit, newdata) (allow.new.levels = TRUE: an unseen group is the population)."""
    case = CASES[name]
    state = json.loads(json.dumps(fit_case(case).prediction_state))
    newdata = pd.DataFrame(case["newdata"])
    if "replicate" in newdata:
        newdata["replicate"] = newdata["replicate"].astype(int)
    np.testing.assert_allclose(predict(state, newdata), case["predictions"], rtol=rtol(case))
    if "population_predictions" in case:
        np.testing.assert_allclose(predict(state, newdata, include_random_effects=False),
                                   case["population_predictions"], rtol=rtol(case))


@pytest.mark.parametrize("name", selected("lmer"))
def test_vcov_at_lme4s_theta(name: str) -> None:
    """vcov(β̂) of the (weighted, offset, sum-coded) model at lme4's own θ̂ and σ̂: the
    same numbers as lme4's wherever the optimizers stop."""
    case = CASES[name]
    design = build_design(case_formula(case), case_data(case["dataset"]))
    optimum = stored_optimum(design, case["method"], np.asarray(case["theta"]), case["sigma"])
    se = np.sqrt(np.diag(optimum.derivatives.covariance))
    np.testing.assert_allclose(se, [c["std_error"] for c in case["coefficients"]], rtol=1e-10)


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c["kind"] == "lmList"])
def test_per_group_fits(name: str) -> None:
    case = CASES[name]
    result = fit_case(case).result
    groups = {g.level: g for g in result.groups}
    for want in case["groups"]:
        group = groups[want["level"]]
        ours = {fe.term: fe.estimate for fe in group.fixed_effects}
        assert list(ours) == want["terms"]
        np.testing.assert_allclose(list(ours.values()), want["estimates"], rtol=LM_RTOL,
                                   atol=1e-10)
    # lme4's pooledSD: of the residuals in the response's scale, with weights too
    assert result.residual_std_dev == pytest.approx(case["pooled_sigma"], rel=LM_RTOL)


def sleepstudy_lm(weights: pd.Series, **kwargs: Any) -> FittedModel:
    data = case_data("sleepstudy.csv")
    data["v"] = weights
    return fit_model("Reaction ~ Days", data, weights="v", **kwargs)


def test_zero_weights_leave_rows_out_as_lm_does() -> None:
    """R's lm: a zero-weight row is out of the likelihood, nobs and the residual df (R:
    logLik -941.3387 with rows 1 and 5 at weight 0, as without them)."""
    data = case_data("sleepstudy.csv")
    weights = data["w"].copy()
    weights[[0, 4]] = 0.0
    zero = sleepstudy_lm(weights).result
    data["v"] = data["w"]
    without = fit_model("Reaction ~ Days", data.drop(index=[0, 4]), weights="v").result
    assert zero.metrics.n_obs == 178 and zero.metrics.df_residual == 176
    assert zero.metrics.loglik == pytest.approx(-941.3387, abs=1e-4)
    assert zero.metrics.loglik == pytest.approx(without.metrics.loglik, rel=1e-12)
    assert [fe.estimate for fe in zero.fixed_effects] == pytest.approx(
        [fe.estimate for fe in without.fixed_effects], rel=1e-12)
    assert any("weight 0" in m for m in zero.messages)


def test_missing_weights_are_refused_naming_column_and_rows() -> None:
    """Issue 12: "refuse negative or missing weights clearly" (R's model.frame would drop
    the row; lm.wfit refuses a missing weight it is given)."""
    data = case_data("sleepstudy.csv")
    weights = data["w"].copy()
    weights[[2, 9]] = np.nan
    with pytest.raises(ArgumentError) as refused:
        sleepstudy_lm(weights)
    message = str(refused.value)
    assert "missing weights not allowed" in message and "column 'v'" in message
    assert "rows 3, 10" in message


def test_negative_weights_are_refused_naming_column_and_rows() -> None:
    data = case_data("sleepstudy.csv")
    weights = data["w"].copy()
    weights[[3, 7]] = -1.0
    with pytest.raises(ArgumentError, match="negative weights not allowed") as raised:
        sleepstudy_lm(weights)
    assert raised.value.problems == {"weights": (
        "negative weights not allowed (as R): column 'v' has negative or infinite values "
        "in rows 4, 8")}


@pytest.mark.parametrize(("column", "why"), [("nope", "no column 'nope'"),
                                             ("Subject", "is categorical")])
def test_a_weights_column_must_exist_and_be_numeric(column: str, why: str) -> None:
    data = case_data("sleepstudy.csv")
    data["Subject"] = "s" + data["Subject"].astype(str)
    with pytest.raises(ArgumentError, match=why):
        fit_model("Reaction ~ Days", data, weights=column)


def test_random_terms_keep_treatment_coding() -> None:
    """lme4 applies ``contrasts`` to the fixed-effects matrix only."""
    case = CASES["orthodont_sex_sum_random"]
    formula = with_contrasts(parse_formula(case["formula"]), case["contrasts"])
    design = build_design(formula, case_data(case["dataset"]))
    assert list(design.fixed_names) == case["fixed_names"]
    assert list(design.random[0].terms) == case["random_names"]


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if "anova" in c])
@pytest.mark.parametrize("type", [1, 3])
def test_lmertest_anova_with_contrasts_and_weights(name: str, type: int) -> None:
    """Type 3 of a sum- or poly-coded model is the treatment-coded model's (lmerTest maps
    its hypotheses to the model's coding); type 1 uses the model's own X; a weighted
    model's tables are of the weighted model. At lme4's optimum (θ̂, β̂, σ̂ from R, as
    tests/stats/test_lmm_anova.py does) F and sums of squares to 1e-8 and the df to 1e-5
    (lmerTest differentiates numerically), but type 3 of a poly-coded model to 1e-5:
    lmerTest rounds the map between the codings to 7 significant digits (``zapsmall``),
    and the irrational entries of contr.poly's map round alike only to ~1e-7; at our
    optimum to 1e-3 and 1e-2 (θ̂ differs from lme4's by up to 1e-4 here, see above)."""
    case = CASES[name]
    fitted = fit_case(case).result
    beta = iter(c["estimate"] for c in case["coefficients"])
    at_lme4 = replace(fitted, theta=tuple(case["theta"]), residual_std_dev=case["sigma"],
                      fixed_effects=tuple(replace(fe, estimate=next(beta))
                                          for fe in fitted.fixed_effects))
    want = case["anova"][str(type)]
    rounded = type == 3 and "contr.poly" in (case["contrasts"] or {}).values()
    for result, tol, df_tol in ((at_lme4, 1e-5 if rounded else 1e-8, 1e-5),
                                (fitted, 1e-3, 1e-2)):
        table = lmm_anova(case_formula(case), case_data(case["dataset"]), result, type,
                          "Satterthwaite")
        assert [r.term for r in table.rows] == [w["term"] for w in want]
        for row, expected in zip(table.rows, want, strict=True):
            assert row.num_df == expected["num_df"]
            assert row.f_value == pytest.approx(expected["f_value"], rel=tol)
            assert row.sum_sq == pytest.approx(expected["sum_sq"], rel=tol)
            assert row.den_df == pytest.approx(expected["den_df"], rel=df_tol)


def test_kenward_roger_of_a_weighted_model_is_refused() -> None:
    """pbkrtest's numbers for a weighted lmer are not the weighted model's (R: F 41.93 on
    18.84 df where Satterthwaite's test of the weighted model has F 42.68 on 17.0)."""
    case = CASES["sleepstudy_lmer_weights"]
    assert case["anova_kr"][0]["f_value"] != pytest.approx(case["anova"]["3"][0]["f_value"],
                                                           rel=1e-2)
    with pytest.raises(InferenceError, match="prior weights"):
        lmm_anova(case_formula(case), case_data(case["dataset"]), fit_case(case).result, 3,
                  "Kenward-Roger")


def test_ranova_of_a_weighted_model() -> None:
    """lmerTest's ranova: the reduced fits keep the weights (log-likelihoods to 1e-6)."""
    case = CASES["sleepstudy_lmer_weights"]
    table = ranova(case_formula(case), case_data(case["dataset"]), fit_case(case).result)
    assert [r.term for r in table.rows] == [w["term"] for w in case["ranova"]]
    for row, want in zip(table.rows, case["ranova"], strict=True):
        assert row.loglik == pytest.approx(want["logLik"], abs=1e-6)


def test_car_type_3_of_a_sum_coded_lm() -> None:
    """car::Anova(type = 3) tests the model's own coefficients: sum-coded, the usual type 3
    table (sums of squares and F to 1e-10: least squares)."""
    case = CASES["cake_lm_sum_poly"]
    fitted = fit_case(case)
    encoder = DesignEncoder.from_json(fitted.prediction_state["encoder"])
    table = lm_anova(fitted.result, encoder, 3)
    assert [r.term for r in table.rows] == [w["term"] for w in case["car3"]]
    for row, want in zip(table.rows, case["car3"], strict=True):
        assert row.sum_sq == pytest.approx(want["sum_sq"], rel=1e-10)
        assert row.num_df == want["num_df"]
        if want["f_value"] is not None:
            assert row.f_value == pytest.approx(want["f_value"], rel=1e-10)


def test_profile_intervals_of_a_sum_coded_model() -> None:
    """The profile of the model's own (sum-coded) coefficients, to lme4's 1e-3 relative
    (the issue's tolerance for profiles: both sides interpolate the profile by splines)."""
    from service.stats.confint import refit_intervals

    case = CASES["cake_lmer_sum_profile"]
    intervals = refit_intervals(case["formula"], case_data(case["dataset"]), "REML",
                                "profile", 0.95, contrasts=case["contrasts"])
    assert [r.parm for r in intervals.rows] == [w["parm"] for w in case["profile"]]
    for row, want in zip(intervals.rows, case["profile"], strict=True):
        assert row.lower == pytest.approx(want["lower"], rel=1e-3), row.parm
        assert row.upper == pytest.approx(want["upper"], rel=1e-3), row.parm


def test_profile_intervals_of_a_weighted_model() -> None:
    """The variance parameters' profile intervals are lme4's (1e-3 relative, the issue's
    tolerance). lme4's own fixed-effect profiles of a weighted fit are broken (it warns
    "non-monotonic profile" and "bad spline fit", and gives (Intercept) 250.38 to 251.73
    where the SE is 7), so ours are checked against the Wald intervals instead, which
    profile intervals of a linear model's fixed effects are close to (within 5% of the
    half-width)."""
    from service.stats.confint import refit_intervals

    case = CASES["sleepstudy_lmer_weights"]
    intervals = refit_intervals(case["formula"], case_data(case["dataset"]), "REML",
                                "profile", 0.95, weights=case["weights"])
    want = {w["parm"]: w for w in case["profile"]}
    fixed = {c["term"]: c for c in case["coefficients"]}
    assert [r.parm for r in intervals.rows] == list(want)
    for row in intervals.rows:
        if row.parm in fixed:
            coef = fixed[row.parm]
            assert want[row.parm]["upper"] - want[row.parm]["lower"] < coef["std_error"]
            half = 1.959964 * coef["std_error"]
            assert row.lower == pytest.approx(coef["estimate"] - half, abs=0.05 * half)
            assert row.upper == pytest.approx(coef["estimate"] + half, abs=0.05 * half)
        else:
            assert row.lower == pytest.approx(want[row.parm]["lower"], rel=1e-3), row.parm
            assert row.upper == pytest.approx(want[row.parm]["upper"], rel=1e-3), row.parm


@pytest.mark.parametrize("name", ["sleepstudy_lm_offset_log", "sleepstudy_lmer_offset",
                                  "sleepstudy_lm_weights", "sleepstudy_lmer_weights"])
def test_fitted_values_and_residuals_are_rs(name: str) -> None:
    """R's fitted() includes the offset, residuals are y - fitted, in the response's scale
    also for a weighted fit."""
    case = CASES[name]
    result = fit_case(case).result
    table = model_residuals(case_formula(case), case_data(case["dataset"]), result).table
    np.testing.assert_allclose(table["fitted"][:5], case["fitted_head"], rtol=rtol(case))
    # residual = y - fitted: its error is the fitted value's, absolute
    scale = float(np.max(np.abs(case["fitted_head"])))
    np.testing.assert_allclose(table["residual"][:5], case["residuals_head"], rtol=0,
                               atol=rtol(case) * scale)


@pytest.mark.parametrize(("contrasts", "message"), [
    ({"recipe": "contr.bogus"}, "contrasts.recipe: unknown contrasts 'contr.bogus'"),
    ({"temp": "contr.sum"}, "contrasts.temp: column 'temp' is numeric"),
    ({"replicate": "contr.sum"}, "contrasts.replicate: 'replicate' is a grouping factor"),
    ({"nope": "contr.sum"}, "contrasts.nope: the dataset has no column 'nope'"),
])
def test_contrasts_refused_name_the_field(contrasts: dict[str, str], message: str) -> None:
    data = case_data("cake.csv")
    data["replicate"] = data["replicate"].astype(str)
    formula = with_contrasts(parse_formula("angle ~ recipe + temp + (1 | replicate)"),
                             contrasts)
    with pytest.raises(DesignError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_design(formula, data)


def test_offset_only_where_r_takes_it() -> None:
    for text in ("y ~ x:offset(z)", "y ~ x - offset(z)", "y ~ x + (offset(z) | g)",
                 "y ~ log(offset(z))"):
        with pytest.raises(FormulaError):
            parse_formula(text)


def test_offset_needs_its_columns_in_new_data() -> None:
    case = CASES["sleepstudy_lm_offset"]
    state = fit_case(case).prediction_state
    from service.stats.errors import PredictionError

    with pytest.raises(PredictionError, match="Days"):
        predict(state, pd.DataFrame({"Subject": ["308"]}))


def test_encoder_without_codings_or_offsets_reads_as_before() -> None:
    """Encoders stored before codings and offsets existed have neither key."""

    design = build_design(parse_formula("angle ~ recipe + temp"), case_data("cake.csv"))
    stored = design.encoder.to_json()
    assert "offsets" in stored and not stored["offsets"]
    del stored["offsets"]
    assert all("codings" not in t for t in stored["fixed"])
    again = DesignEncoder.from_json(stored)
    assert again.fixed == design.encoder.fixed and again.offsets == ()
