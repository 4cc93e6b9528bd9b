"""Data-dependent transforms as R's model.frame computes them: on every row where their own
argument is present, before rows with missing values elsewhere are dropped.

Reference: R 4.2.2 / lme4 1.1-31 (tests/data/r/missing_transforms.R wrote the data, with
missing values in y and x on different rows, and the expected numbers). Tolerances: lm and
lmList 1e-9 relative (least squares, same algorithm); lmer the mixed-model reference
tolerances (fixed effects within 1% of their SE, SEs 0.5%).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from service.stats.design import build_design
from service.stats.errors import DesignError
from service.stats.fit import fit_model
from service.stats.formula import parse_formula
from service.stats.lmlist import fit_by_group
from service.stats.predict import predict

DATA = Path(__file__).resolve().parents[1] / "data"
REF: dict[str, Any] = json.loads((DATA / "expected" / "missing_transforms.json").read_text())
REL = 1e-9


def data() -> pd.DataFrame:
    return pd.read_csv(DATA / "missing_transforms.csv")


def test_scale_uses_every_present_value_of_its_argument() -> None:
    design = build_design(parse_formula("y ~ scale(x)"), data())
    params = design.encoder.params["scale(x)"]
    assert params["center"] == pytest.approx(REF["scale_center"], rel=1e-12)
    assert params["scale"] == pytest.approx(REF["scale_scale"], rel=1e-12)
    assert design.n_obs == 40 and design.n_dropped_missing == 8


def test_lm_with_scale_and_poly_matches_r_and_predicts_with_stored_parameters() -> None:
    ref = REF["lm"]
    fitted = fit_model(ref["model"], data())
    assert fitted.result.metrics.n_obs == ref["n_obs"]
    got = {fe.term: fe.estimate for fe in fitted.result.fixed_effects}
    assert got == pytest.approx(ref["coef"], rel=REL)
    state = json.loads(json.dumps(fitted.prediction_state))
    new = pd.DataFrame(REF["new"])
    np.testing.assert_allclose(predict(state, new), ref["predict"], rtol=REL)


def test_scaled_response_uses_rows_dropped_for_a_missing_predictor() -> None:
    ref = REF["lm_response"]
    fitted = fit_model(ref["model"], data())
    assert fitted.result.metrics.n_obs == ref["n_obs"]
    got = {fe.term: fe.estimate for fe in fitted.result.fixed_effects}
    assert got == pytest.approx(ref["coef"], rel=REL)


def test_lmer_with_scale_matches_lme4() -> None:
    ref = REF["lmer"]
    result = fit_model(ref["model"], data(), "REML").result
    assert result.metrics.n_obs == ref["n_obs"]
    for fe in result.fixed_effects:
        se = ref["fixef_se"][fe.term]
        assert fe.estimate == pytest.approx(ref["fixef"][fe.term], abs=0.01 * se)
        assert fe.std_error == pytest.approx(se, rel=5e-3)


def test_lmlist_scales_within_each_group_on_its_present_values() -> None:
    ref = REF["lmlist"]
    result = fit_by_group(parse_formula(ref["model"]), data())
    for group in result.groups:
        got = {fe.term: fe.estimate for fe in group.fixed_effects}
        assert got == pytest.approx(ref["coef"][group.level], rel=REL)


@pytest.mark.parametrize("formula", ["y ~ poly(x, 2)", "y ~ z + (poly(x, 2) | g)",
                                     "y ~ poly(log(x), 2)"])
def test_poly_of_a_column_with_missing_values_is_refused_as_in_r(formula: str) -> None:
    with pytest.raises(DesignError, match=REF["poly_error"].replace("(", r"\(")):
        build_design(parse_formula(formula), data())


def test_lmlist_refuses_poly_with_missing_values_for_the_whole_model() -> None:
    with pytest.raises(DesignError, match=REF["lmlist_poly_error"]):
        fit_by_group(parse_formula("y ~ poly(x, 2) | g"), data())


def test_poly_of_a_complete_column_is_fine_when_other_columns_miss_values() -> None:
    design = build_design(parse_formula("y ~ poly(z, 2)"), data())
    assert design.n_obs == 43  # the five missing y


def test_a_domain_error_in_a_row_dropped_anyway_is_not_an_error() -> None:
    # R: log(-1) is NaN (a warning) in a row na.omit drops for its missing y
    frame = pd.DataFrame({"y": [1.0, np.nan, 2.0, 3.5, 2.2], "x": [1.0, -1.0, 2.0, 3.0, 4.0]})
    design = build_design(parse_formula("y ~ log(x) + scale(x)"), frame)
    assert design.n_obs == 4
    # scale(x) still uses the dropped row's x, as model.frame does
    assert design.encoder.params["scale(x)"]["center"] == pytest.approx(1.8, rel=1e-15)
    with pytest.raises(DesignError, match="positive values"):
        build_design(parse_formula("y ~ log(x)"), frame.fillna({"y": 0.0}))
