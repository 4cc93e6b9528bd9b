"""Prediction intervals, partial re.form and the covariances a fit reports, against R
(tests/data/r/prediction_intervals.R, tests/data/expected/prediction_intervals.json).

Tolerances, and why:
- lm and lmList: 1e-10 relative. Least squares estimates and vcov match R to ~1e-14 and
  the t quantiles of scipy and R agree to the last digits; what is left is rounding.
- the mixed-model formula on lme4's own ingredients (its vcov, sigma, VarCorr and postVar
  put into a prediction state): 1e-10 relative, the same arithmetic in another order.
- mixed models end to end (our fit against lme4's): our optimum agrees with lme4's to
  ~1e-6 in θ, where the REML criterion is flat; quantities made of variance parameters
  move by up to ~6e-5 relative (vcov, VarCorr, postVar, se_fit): 2e-4 relative; the
  predictions (fixed effects plus modes) and bounds by ~1e-6 relative: 1e-5 relative;
  correlations 1e-5 absolute.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from service.stats.errors import PredictionError
from service.stats.fit import FittedModel, fit_model
from service.stats.predict import Predictor
from service.stats.prediction_intervals import Interval
from tests.stats.test_ols import DATA

REFERENCE: dict[str, Any] = json.loads(
    (DATA / "expected" / "prediction_intervals.json").read_text())
LM_CASES = {
    "mood_lm": ("mood.csv", "Mood ~ Exercise * State"),
    "sleepstudy_lm": ("sleepstudy.csv", "Reaction ~ Days"),
    "aliased_lm": ("aliased.csv", "y ~ x1 + x12 + x2"),
    "sleepstudy_lmlist": ("sleepstudy.csv", "Reaction ~ Days | Subject"),
}
MIXED_DATA = {"sleepstudy_reml": "sleepstudy.csv", "penicillin_crossed": "penicillin.csv",
              "sleepstudy_uncorr": "sleepstudy.csv"}
KEYS = [f"{interval} {level}" for interval in ("confidence", "prediction")
        for level in ("0.9", "0.95")]
_FITS: dict[tuple[str, str], FittedModel] = {}


def _fit(dataset: str, formula: str) -> FittedModel:
    key = (dataset, formula)
    if key not in _FITS:
        data = pd.read_csv(DATA / dataset, dtype={"Subject": str})
        _FITS[key] = fit_model(formula, data)
    return _FITS[key]


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if "Subject" in frame:
        frame["Subject"] = frame["Subject"].astype(str)
    return frame


def _predictor(fitted: FittedModel) -> Predictor:
    return Predictor(json.loads(json.dumps(fitted.prediction_state)))


def _split(key: str) -> tuple[Interval, float]:
    interval, level = key.split()
    assert interval in ("confidence", "prediction")
    return interval, float(level)  # type: ignore[return-value]


@pytest.mark.parametrize("case", list(LM_CASES))
@pytest.mark.parametrize("key", KEYS)
def test_lm_intervals_are_predict_lm(case: str, key: str) -> None:
    dataset, formula = LM_CASES[case]
    want = REFERENCE["lm"][case]
    interval, level = _split(key)
    table = _predictor(_fit(dataset, formula)).predict_intervals(
        _frame(want["newdata"]), interval=interval, level=level)
    for name in ("fit", "se_fit", "lower", "upper"):
        assert getattr(table, name) == pytest.approx(want[key][name], rel=1e-10), name


def _mixed(case: str) -> tuple[dict[str, Any], FittedModel]:
    want = REFERENCE["mixed"][case]
    return want, _fit(MIXED_DATA[case], want["formula"])


def _lme4_state(fitted: FittedModel, want: dict[str, Any]) -> dict[str, Any]:
    """Our prediction state with lme4's ingredients of intervals in place of ours."""
    state = copy.deepcopy(fitted.prediction_state)
    covariances = {row["grp"]: row for row in want["varcorr"] if row["var2"] is None}
    cond = {entry["group"]: entry["cond_cov"] for entry in want["cond_var"]}
    terms = []
    for entry in state["random_effects"]:
        variance = covariances[entry["group"]]["vcov"]
        terms.append({"covariance": [[variance]], "cond_cov": cond[entry["group"]]})
        assert len(entry["terms"]) == 1 or entry["group"] == "Subject"
    if want["formula"].startswith("Reaction"):  # (Days | Subject): the 2 x 2 VarCorr
        rows = {(r["var1"], r["var2"]): r["vcov"] for r in want["varcorr"]}
        off = rows[("(Intercept)", "Days")]
        terms[0]["covariance"] = [[rows[("(Intercept)", None)], off],
                                  [off, rows[("Days", None)]]]
    state["uncertainty"] = {"vcov": want["vcov"]["matrix"], "sigma": want["sigma"],
                            "df": None, "random_effects": terms}
    return state


@pytest.mark.parametrize(("case", "selection"), [
    ("sleepstudy_reml", "all"), ("sleepstudy_reml", "population"),
    ("penicillin_crossed", "all"), ("penicillin_crossed", "plate"),
    ("penicillin_crossed", "sample"), ("penicillin_crossed", "population")])
@pytest.mark.parametrize("key", KEYS)
def test_the_mixed_model_formula_on_lme4s_ingredients(case: str, selection: str,
                                                      key: str) -> None:
    want, fitted = _mixed(case)
    expected = want["intervals"][selection]
    interval, level = _split(key)
    table = Predictor(_lme4_state(fitted, want)).predict_intervals(
        _frame(expected["newdata"]), interval=interval, level=level,
        groups=expected["included"])
    assert table.se_fit == pytest.approx(expected["se_fit"], rel=1e-10)
    half = (np.array(expected[key]["upper"]) - np.array(expected[key]["lower"])) / 2
    assert (table.upper - table.lower) / 2 == pytest.approx(half, rel=1e-10)


@pytest.mark.parametrize(("case", "selection"), [
    ("sleepstudy_reml", "all"), ("sleepstudy_reml", "population"),
    ("penicillin_crossed", "all"), ("penicillin_crossed", "plate"),
    ("penicillin_crossed", "sample"), ("penicillin_crossed", "population")])
@pytest.mark.parametrize("key", KEYS)
def test_mixed_model_intervals_of_our_fit(case: str, selection: str, key: str) -> None:
    want, fitted = _mixed(case)
    expected = want["intervals"][selection]
    interval, level = _split(key)
    table = _predictor(fitted).predict_intervals(
        _frame(expected["newdata"]), interval=interval, level=level,
        groups=expected["included"])
    # the fit is R's predict(fit, newdata, re.form = ..., allow.new.levels = TRUE)
    assert table.fit == pytest.approx(expected["fit"], rel=1e-5)
    assert table.se_fit == pytest.approx(expected["se_fit"], rel=2e-4)
    assert table.lower == pytest.approx(expected[key]["lower"], rel=1e-5)
    assert table.upper == pytest.approx(expected[key]["upper"], rel=1e-5)


def test_partial_re_form_without_intervals_is_lme4s_predict() -> None:
    want, fitted = _mixed("penicillin_crossed")
    predictor = _predictor(fitted)
    for selection in ("all", "plate", "sample", "population"):
        expected = want["intervals"][selection]
        got = predictor.predict(_frame(expected["newdata"]), groups=expected["included"])
        assert got == pytest.approx(expected["fit"], rel=1e-5), selection
    # all named is the default (re.form = NULL), none named is re.form = NA
    rows = _frame(want["intervals"]["all"]["newdata"])
    assert np.array_equal(predictor.predict(rows, groups=["plate", "sample"]),
                          predictor.predict(rows))
    assert np.array_equal(predictor.predict(rows, groups=[]),
                          predictor.predict(rows, include_random_effects=False))


def test_an_unknown_grouping_factor_is_named() -> None:
    _, fitted = _mixed("penicillin_crossed")
    rows = _frame(REFERENCE["mixed"]["penicillin_crossed"]["intervals"]["all"]["newdata"])
    with pytest.raises(PredictionError, match="Plate.*grouping factors: plate, sample"):
        _predictor(fitted).predict(rows, groups=["Plate"])


@pytest.mark.parametrize("case", ["sleepstudy_reml", "penicillin_crossed"])
def test_vcov_correlation_is_cov2cor(case: str) -> None:
    want, fitted = _mixed(case)
    vcov = fitted.result.vcov
    assert vcov is not None
    assert np.array(vcov.matrix) == pytest.approx(np.array(want["vcov"]["matrix"]), rel=2e-4)
    assert np.array(vcov.correlation) == pytest.approx(np.array(want["vcov_correlation"]),
                                                      abs=1e-5)


@pytest.mark.parametrize("case", list(MIXED_DATA))
def test_varcorr_covariances(case: str) -> None:
    want, fitted = _mixed(case)
    rows = {(r["grp"], r["var1"], r["var2"]): r["vcov"] for r in want["varcorr"]}
    for term in fitted.result.random_effects:
        assert len(term.covariance) == len(term.terms)
        for i, first in enumerate(term.terms):
            for j, second in enumerate(term.terms):
                # as.data.frame(VarCorr) lists a pair once, in the terms' order
                low, high = sorted((first, second), key=term.terms.index)
                key = (term.group, first, None) if i == j else (term.group, low, high)
                assert term.covariance[i][j] == pytest.approx(rows[key], rel=2e-4), key


@pytest.mark.parametrize("case", ["sleepstudy_reml", "penicillin_crossed"])
def test_condvar_arrays(case: str) -> None:
    want, fitted = _mixed(case)
    by_group = {m.group: m for m in fitted.result.conditional_modes}
    for entry in want["cond_var"]:
        modes = by_group[entry["group"]]
        assert list(modes.terms) == entry["terms"]
        assert list(modes.levels) == entry["levels"]
        got = np.array(modes.cond_cov)
        assert got.shape == (len(entry["levels"]), len(entry["terms"]), len(entry["terms"]))
        assert got == pytest.approx(np.array(entry["cond_cov"]), rel=2e-4)
        # cond_sd stays the square root of the diagonal
        assert np.sqrt(np.diagonal(got, axis1=1, axis2=2)) == pytest.approx(
            np.array(modes.cond_sd), rel=1e-12)


def test_condvar_of_two_terms_of_one_factor() -> None:
    want, fitted = _mixed("sleepstudy_uncorr")
    terms = {m.terms: m for m in fitted.result.conditional_modes}
    for term, expected in want["cond_var"].items():
        modes = terms[(term,)]
        assert list(modes.levels) == expected["levels"]
        got = np.sqrt(np.array(modes.cond_cov)[:, 0, 0])
        assert got == pytest.approx(expected["cond_sd"], rel=2e-4)


def test_a_model_stored_without_the_ingredients_refuses_intervals() -> None:
    _, fitted = _mixed("sleepstudy_reml")
    state = copy.deepcopy(fitted.prediction_state)
    del state["uncertainty"]
    rows = _frame(REFERENCE["mixed"]["sleepstudy_reml"]["intervals"]["all"]["newdata"])
    predictor = Predictor(state)
    assert len(predictor.predict(rows)) == 4
    with pytest.raises(PredictionError, match="fit it again"):
        predictor.predict_intervals(rows, interval="confidence", level=0.95)


@pytest.mark.parametrize("groups", [[], ["Sex"], ["Subject"], None])
def test_the_formulas_order_of_terms_does_not_change_intervals(
        groups: list[str] | None) -> None:
    # lme4 orders the terms by their levels (Subject's 27 before Sex's 2); the encoder
    # keeps the formula's order, so a left-out term is found by its group and terms
    rows = pd.read_csv(DATA / "orthodont.csv").iloc[[0, 21, 45]]
    tables = [_predictor(_fit("orthodont.csv", formula)).predict_intervals(
        rows, interval="prediction", level=0.95, groups=groups)
        for formula in ("distance ~ age + (age | Subject) + (1 | Sex)",
                        "distance ~ age + (1 | Sex) + (age | Subject)")]
    assert tables[1].lower == pytest.approx(tables[0].lower, rel=1e-12)
    assert tables[1].se_fit == pytest.approx(tables[0].se_fit, rel=1e-12)
