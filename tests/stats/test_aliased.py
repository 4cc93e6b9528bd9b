"""Aliased columns of a rank-deficient fit are listed in their place with no numbers and
``aliased`` set, as R's ``summary`` prints NA rows; predictions ignore them.

Reference: R 4.2.2 / lme4 1.1-31 (tests/data/r/aliased.R wrote tests/data/aliased.csv and
tests/data/expected/aliased.json). Tolerances: lm and lmList 1e-9 relative (least squares);
lmer fixed effects within 1% of their SE and SEs 0.5% (the mixed-model reference
tolerances). Names and the position of the aliased rows: exact.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from service.stats.fit import fit_model
from service.stats.predict import predict
from service.stats.results import FixedEffect, with_aliased

DATA = Path(__file__).resolve().parents[1] / "data"
REF: dict[str, Any] = json.loads((DATA / "expected" / "aliased.json").read_text())
REL = 1e-9
NUMBERS = ("estimate", "std_error", "statistic", "df", "p_value", "conf_low", "conf_high")


def data() -> pd.DataFrame:
    return pd.read_csv(DATA / "aliased.csv")


def _assert_not_estimable(fe: FixedEffect) -> None:
    assert fe.aliased
    assert all(getattr(fe, name) is None for name in NUMBERS)


def test_lm_lists_the_aliased_coefficient_in_its_place() -> None:
    ref = REF["lm"]
    result = fit_model(ref["model"], data()).result
    assert [fe.term for fe in result.fixed_effects] == list(ref["coefficients"])
    for fe in result.fixed_effects:
        want = ref["coefficients"][fe.term]
        if want["aliased"]:
            _assert_not_estimable(fe)
            continue
        assert not fe.aliased and fe.df == ref["df_residual"]
        for name in ("estimate", "std_error", "statistic", "p_value"):
            assert getattr(fe, name) == pytest.approx(want[name], rel=REL), (fe.term, name)
    assert [fe.term for fe in result.fixed_effects if fe.aliased] == ref["aliased"]
    assert any("dropping 1 column: x2" in m for m in result.messages)


def test_lm_predictions_ignore_the_aliased_coefficient() -> None:
    fitted = fit_model(REF["lm"]["model"], data())
    state = json.loads(json.dumps(fitted.prediction_state))
    assert "x2" not in state["fixed_effects"]
    np.testing.assert_allclose(predict(state, pd.DataFrame(REF["new"])), REF["predict_lm"],
                               rtol=REL)


def test_lmer_lists_the_column_lme4_drops() -> None:
    ref = REF["lmer"]
    result = fit_model(ref["model"], data(), "REML").result
    assert [fe.term for fe in result.fixed_effects] == ["(Intercept)", "x1", "x12", "x2"]
    _assert_not_estimable(result.fixed_effects[3])
    for fe in result.fixed_effects[:3]:
        se = ref["fixef_se"][fe.term]
        assert fe.estimate == pytest.approx(ref["fixef"][fe.term], abs=0.01 * se)
        assert fe.std_error == pytest.approx(se, rel=5e-3)


def test_lmlist_lists_a_group_s_aliased_coefficient() -> None:
    ref = REF["lmlist"]
    fitted = fit_model(ref["model"], data())
    for group in fitted.result.groups:
        want = ref["coef"][group.level]
        assert [fe.term for fe in group.fixed_effects] == list(want)
        for fe in group.fixed_effects:
            if want[fe.term] is None:
                _assert_not_estimable(fe)
            else:
                assert fe.estimate == pytest.approx(want[fe.term], rel=REL)
    rows = pd.DataFrame({"x1": [0.3], "x2": [7.0], "g": ["c"]})  # c's x2 is ignored
    c = ref["coef"]["c"]
    state = json.loads(json.dumps(fitted.prediction_state))
    assert predict(state, rows)[0] == pytest.approx(c["(Intercept)"] + 0.3 * c["x1"], rel=REL)


def test_the_result_document_has_nulls_and_the_flag() -> None:
    result = fit_model(REF["lm"]["model"], data()).result
    row = next(fe for fe in result.to_dict()["fixed_effects"] if fe["term"] == "x2")
    assert row == {"term": "x2", "aliased": True, **dict.fromkeys(NUMBERS)}
    assert asdict(result.fixed_effects[0])["aliased"] is False


def test_with_aliased_keeps_the_model_matrix_order() -> None:
    fitted = [FixedEffect("a", 1.0, 0.1, 10.0, 5.0, 0.01, 0.8, 1.2),
              FixedEffect("c", 2.0, 0.2, 10.0, 5.0, 0.01, 1.6, 2.4)]
    merged = with_aliased(fitted, ["a", "b", "c", "d"], {"b", "d"})
    assert [fe.term for fe in merged] == ["a", "b", "c", "d"]
    assert [fe.aliased for fe in merged] == [False, True, False, True]
    assert with_aliased(fitted, ["a", "c"], set()) == tuple(fitted)
