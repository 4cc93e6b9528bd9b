"""vcov, Wald and t intervals and lm anova tables against R (tests/data/r/inference.R,
tests/data/expected/inference.json).

Tolerances: 1e-6 relative for lm, whose estimates and covariance match R to ~1e-12 (the
rest is the last digits of R's printing and the quantile functions); for mixed models,
issue 4's (tests/stats/lme4_fit_check.py): standard errors within 0.5% of lme4's, so
variances within 1% and covariances within 1% of sqrt(v_ii v_jj), correlations within
0.01, interval bounds within 1% of the estimate's SE.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from service.stats.design.encoder import DesignEncoder
from service.stats.fit import FittedModel, fit_model
from service.stats.inference import InferenceError, lm_anova, wald_intervals
from service.stats.results import FitResult
from tests.stats.test_ols import DATA

REFERENCE: dict[str, Any] = json.loads((DATA / "expected" / "inference.json").read_text())
CASES: dict[str, dict[str, Any]] = REFERENCE["cases"]
LM = [name for name, case in CASES.items() if case["method"] == "OLS"]
LMM = [name for name, case in CASES.items() if case["method"] != "OLS"]
_FITS: dict[str, FittedModel] = {}


def fitted(name: str) -> FittedModel:
    if name not in _FITS:
        case = CASES[name]
        method = "REML" if case["method"] == "OLS" else case["method"]
        _FITS[name] = fit_model(case["formula"], pd.read_csv(DATA / case["dataset"]), method)
    return _FITS[name]


def _array(rows: list[list[float | None]]) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)


@pytest.mark.parametrize("name", LM + LMM)
def test_vcov_is_rs(name: str) -> None:
    case = CASES[name]
    result = fitted(name).result
    assert result.vcov is not None
    assert list(result.vcov.terms) == case["vcov"]["terms"]
    got, want = _array(result.vcov.matrix), _array(case["vcov"]["matrix"])
    got_corr = _array(result.vcov.correlation)
    want_corr = _array(case["vcov_correlation"]["matrix"])
    assert np.array_equal(np.isnan(got), np.isnan(want))  # aliased rows: NA in both
    # cov2cor puts 1 on the diagonal even for an NA variance; the result keeps null there
    np.fill_diagonal(want_corr, np.where(np.isnan(np.diag(want)), np.nan, 1.0))
    assert np.array_equal(np.isnan(got_corr), np.isnan(want_corr))
    known = ~np.isnan(want)
    known_corr = ~np.isnan(want_corr)
    scale = np.sqrt(np.outer(np.diag(want), np.diag(want)))[known]
    if case["method"] == "OLS":
        assert got[known] == pytest.approx(want[known], rel=1e-6, abs=1e-12 * scale.max())
        assert got_corr[known_corr] == pytest.approx(want_corr[known_corr], rel=1e-6, abs=1e-9)
    else:
        assert np.all(np.abs(got[known] - want[known]) <= 1e-2 * scale)
        assert got_corr[known_corr] == pytest.approx(want_corr[known_corr], abs=1e-2)


@pytest.mark.parametrize("level", ["0.95", "0.8"])
@pytest.mark.parametrize("name", LM + LMM)
def test_wald_intervals_are_confints(name: str, level: str) -> None:
    case = CASES[name]
    result = fitted(name).result
    intervals = wald_intervals(result, float(level))
    want = case["confint"][level]
    assert [row.parm for row in intervals.rows] == [row["parm"] for row in want]
    se = {fe.term: fe.std_error for fe in result.fixed_effects}
    for row, ref in zip(intervals.rows, want, strict=True):
        if ref["lower"] is None:
            assert (row.lower, row.upper) == (None, None)
        elif case["method"] == "OLS":
            assert (row.lower, row.upper) == pytest.approx((ref["lower"], ref["upper"]),
                                                           rel=1e-6)
        else:
            assert (row.lower, row.upper) == pytest.approx(
                (ref["lower"], ref["upper"]), abs=1e-2 * se[row.parm])


def _encoder(model: FittedModel) -> DesignEncoder:
    return DesignEncoder.from_json(model.prediction_state["encoder"])


@pytest.mark.parametrize("anova_type", [1, 2, 3])
@pytest.mark.parametrize("name", [n for n in LM if "anova" in CASES[n]])
def test_lm_anova_is_rs(name: str, anova_type: int) -> None:
    model = fitted(name)
    table = lm_anova(model.result, _encoder(model), anova_type)
    want = CASES[name]["anova"][str(anova_type)]
    assert [row.term for row in table.rows] == [row["term"] for row in want]
    for row, ref in zip(table.rows, want, strict=True):
        for key in ("sum_sq", "mean_sq", "num_df", "den_df", "f_value", "p_value"):
            got, expected = getattr(row, key), ref[key]
            if expected is None:
                assert got is None, (row.term, key)
            else:
                assert got == pytest.approx(expected, rel=1e-6, abs=1e-12), (row.term, key)


def test_intervals_refuse_a_level_outside_0_1() -> None:
    with pytest.raises(InferenceError, match="level"):
        wald_intervals(fitted("mood_lm").result, 1.0)


def test_anova_refuses_mixed_models_and_aliased_lms() -> None:
    lmm = fitted("sleepstudy_reml")
    with pytest.raises(InferenceError):
        lm_anova(lmm.result, _encoder(lmm), 1)
    aliased = fitted("aliased_lm")
    with pytest.raises(InferenceError, match="aliased"):
        lm_anova(aliased.result, _encoder(aliased), 1)


def test_a_result_stored_without_vcov_reads_as_none() -> None:
    from service.inspection.stored import stored_fit

    class Row:
        kind, method, conditional_modes = "lm", "OLS", None
        result = {k: v for k, v in fitted("mood_lm").result.to_dict().items() if k != "vcov"}

    assert stored_fit(Row()).vcov is None
    Row.result = json.loads(json.dumps(fitted("mood_lm").result.to_dict()))
    restored = stored_fit(Row())
    assert restored.vcov == fitted("mood_lm").result.vcov
    assert isinstance(restored, FitResult)
