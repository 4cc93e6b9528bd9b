"""Predictions from a stored state reproduce R's predict() on the reference cases."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from service.stats.design import build_design
from service.stats.errors import PredictionError
from service.stats.formula import parse_formula
from service.stats.predict import make_prediction_state, predict
from service.stats.results import ConditionalModes
from tests.stats.design_formulas import case, load


def _r_state(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A prediction state from R's own fixef and ranef, through a JSON round trip."""
    expected = case(name)
    design = build_design(parse_formula(expected["formula"]), load(expected))
    modes = []
    for block in design.random:
        by_level = expected["ranef"][block.group]
        levels = tuple(by_level)
        modes.append(ConditionalModes(
            group=block.group, terms=block.terms, levels=levels,
            modes=tuple(tuple(by_level[lv][t] for t in block.terms) for lv in levels),
            cond_sd=()))
    state = make_prediction_state(design, expected["fixef"], modes)
    return json.loads(json.dumps(state)), expected


@pytest.mark.parametrize("name", ["mood_lm_state", "mood_lm", "sleepstudy_lm"])
def test_lm_prediction_reproduces_r(name: str) -> None:
    state, expected = _r_state(name)
    assert state["kind"] == "lm"
    rows = pd.DataFrame(expected["predict_newdata"]["rows"])
    # R's fixef are printed to 15 significant digits; X β then agrees to ~1e-13, so 1e-9
    # absolute (predictions of order 1-10) leaves room only for arithmetic rounding.
    np.testing.assert_allclose(predict(state, rows), expected["predict_newdata"]["fit"],
                               rtol=0, atol=1e-9)
    without_response = rows.drop(columns=[state["encoder"]["response"]["column"]])
    np.testing.assert_allclose(predict(state, without_response),
                               expected["predict_newdata"]["fit"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["sleepstudy_reml", "sleepstudy_ml", "sleepstudy_uncorr"])
def test_lmm_prediction_reproduces_r(name: str) -> None:
    state, expected = _r_state(name)
    newdata = expected["predict_newdata"]
    rows = pd.DataFrame(newdata["rows"])
    # R's fixef/ranef are stored to 15 significant digits and the predictions are ~300:
    # 1e-9 absolute is ~3e-12 relative, far above that rounding and far below any error.
    tol = {"rtol": 0, "atol": 1e-9}
    np.testing.assert_allclose(predict(state, rows), newdata["fit"], **tol)
    np.testing.assert_allclose(predict(state, rows, include_random_effects=False),
                               newdata["fit_fixed_only"], **tol)
    unseen = pd.DataFrame(newdata["rows_unseen"])
    np.testing.assert_allclose(predict(state, unseen), newdata["fit_unseen"], **tol)
    with pytest.raises(PredictionError, match="308_unseen, 372_unseen"):
        predict(state, unseen, new_levels="error")


def test_population_prediction_needs_no_group_column() -> None:
    state, expected = _r_state("sleepstudy_reml")
    rows = pd.DataFrame(expected["predict_newdata"]["rows"]).drop(columns=["Subject"])
    np.testing.assert_allclose(predict(state, rows, include_random_effects=False),
                               expected["predict_newdata"]["fit_fixed_only"], rtol=0, atol=1e-9)
    with pytest.raises(PredictionError, match="Subject"):
        predict(state, rows)


def test_crossed_and_nested_terms_add_every_block() -> None:
    state, expected = _r_state("pastes_nested")
    data = load(expected).iloc[:7]
    # fitted = intercept + batch mode + cask:batch mode (R's fitted values, 15 digits).
    np.testing.assert_allclose(predict(state, data), expected["fitted"][:7], rtol=0, atol=1e-9)


def test_state_errors() -> None:
    state, _ = _r_state("mood_lm_state")
    with pytest.raises(PredictionError, match="Exercise, State"):
        predict(state, pd.DataFrame({"Mood": [1.0]}))
    with pytest.raises(PredictionError, match="kind"):
        predict({**state, "kind": "glm"}, pd.DataFrame({"Exercise": [1.0]}))


@pytest.mark.parametrize("name", ["sleepstudy_uncorr", "pastes_nested", "mood_lm_state"])
def test_state_from_a_real_fit_reproduces_r_fitted_values(name: str) -> None:
    from service.stats.fit import fit_model

    expected = case(name)
    data = load(expected)
    fitted = fit_model(expected["formula"], data, "REML")
    state = json.loads(json.dumps(fitted.prediction_state))
    # Our optimum matches lme4's to ~1e-6 relative in θ, so fitted values (up to ~450)
    # agree to well under 1e-3; a mismatched block or level would be off by whole units.
    np.testing.assert_allclose(predict(state, data), expected["fitted"], rtol=0, atol=1e-3)


def test_per_group_model_finds_a_numeric_group_written_another_way() -> None:
    """A per-group model fitted on the integer groups 100000 and 200000 (labels as R's
    as.character writes integers) predicts rows whose group arrives as 100000.0 or 1e5, as
    R matches the factor level by value; an unknown group is still refused by name."""
    from service.stats.fit import fit_model

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"g": np.repeat([100000, 200000], 20),
                          "x": np.tile(np.arange(20.0), 2)})
    frame["y"] = np.where(frame.g == 100000, 1.0, 5.0) + 0.5 * frame.x + rng.normal(size=40)
    fitted = fit_model("y ~ x | g", frame)
    state = json.loads(json.dumps(fitted.prediction_state))
    exact = predict(state, pd.DataFrame({"g": [100000, 200000], "x": [3.0, 3.0]}))
    other = predict(state, pd.DataFrame({"g": [100000.0, 2e5], "x": [3.0, 3.0]}))
    assert np.allclose(other, exact, rtol=0, atol=1e-12)
    with pytest.raises(PredictionError, match="300000|3e\\+05"):
        predict(state, pd.DataFrame({"g": [300000.0], "x": [3.0]}))


def test_every_group_missing_is_the_population_prediction() -> None:
    """A mixed model's rows whose grouping value is missing (all of them here) get the
    population-level prediction, as R's allow.new.levels = TRUE does."""
    state, expected = _r_state("sleepstudy_reml")
    rows = pd.DataFrame({"Days": [0.0, 5.0], "Subject": [None, None]})
    values = predict(state, rows)
    beta = expected["fixef"]
    assert np.allclose(values, [beta["(Intercept)"], beta["(Intercept)"] + 5 * beta["Days"]],
                       rtol=1e-12)
