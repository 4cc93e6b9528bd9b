"""lmerTest's anova tables of mixed models against R (tests/data/r/lmm_anova.R,
tests/data/expected/lmm_anova.json): types 1, 2 and 3, Satterthwaite and Kenward-Roger.

Two checks per table:

- At lme4's optimum (θ̂, β̂, σ̂ from R put into the stored result), which isolates the
  tables from the optimizer. Everything that is algebra matches R to rounding: sums of
  squares, F, numerator df and all of Kenward-Roger's numbers within 1e-8 relative.
  Satterthwaite's df are a ratio of numerical derivatives (lmerTest: numDeriv's
  Richardson extrapolation in lme4's θ; here central differences in standardized
  coordinates): 1e-5 relative, except Orthodont, where the two derivatives differ by 5e-4
  relative (the per-coefficient df of lmerTest's summary do too: 25.0113 vs 24.9995 for
  age at lme4's own θ̂), so 1e-3 there; p-values, which follow from F and the df, within
  50 times the df's tolerance.
- At this engine's own optimum (the table a client gets): θ̂ moves from lme4's by up to
  ~1e-3 relative on these cases (tests/stats/test_lmm_reference.py's tolerance for θ is
  0.5%), which moves F, sums of squares and df to first order: 1e-2 relative, p-values
  5e-2 relative (or 1e-8 absolute for tiny ones).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from service.stats.fit import FittedModel, fit_model
from service.stats.formula import parse_formula
from service.stats.inference import AnovaRow, AnovaTable, InferenceError
from service.stats.lmm.kenward_roger import MAX_ROWS, KenwardRogerTooLarge
from service.stats.lmm_anova import lmm_anova
from service.stats.results import FitResult
from tests.stats.test_ols import DATA

REFERENCE: dict[str, Any] = json.loads((DATA / "expected" / "lmm_anova.json").read_text())
CASES: dict[str, dict[str, Any]] = REFERENCE["cases"]
TABLES = [(name, ddf, type_) for name, case in CASES.items()
          for ddf in case["anova"] for type_ in case["anova"][ddf]]
# lmerTest's numerical derivatives differ from these by 5e-4 on Orthodont (see above)
DF_TOLERANCE = {"orthodont_reml": 1e-3}
_FITS: dict[str, FittedModel] = {}
_DATA: dict[str, pd.DataFrame] = {}


def data(name: str) -> pd.DataFrame:
    case = CASES[name]
    key = f"{case['dataset']}[{case['skip_rows']}:]"
    if key not in _DATA:  # the rows R used: all but the first skip_rows
        _DATA[key] = pd.read_csv(DATA / case["dataset"]).iloc[case["skip_rows"]:]
    return _DATA[key]


def fitted(name: str) -> FittedModel:
    if name not in _FITS:
        case = CASES[name]
        _FITS[name] = fit_model(case["formula"], data(name), case["method"])
    return _FITS[name]


def at_lme4_optimum(name: str) -> FitResult:
    """Our stored result with lme4's θ̂, β̂ and σ̂ in place of ours."""
    case = CASES[name]
    result = fitted(name).result
    beta = iter(case["beta"])  # lme4's fixef has no aliased coefficients
    fixed = tuple(fe if fe.aliased else replace(fe, estimate=next(beta))
                  for fe in result.fixed_effects)
    return replace(result, theta=tuple(case["theta"]), residual_std_dev=case["sigma"],
                   fixed_effects=fixed)


def table(name: str, result: FitResult, ddf: str, type_: str) -> AnovaTable:
    return lmm_anova(parse_formula(CASES[name]["formula"]), data(name), result, int(type_),
                     ddf)  # type: ignore[arg-type]


def _untested(row: AnovaRow, want: dict[str, Any]) -> bool:
    """An aliased term's row: all NA in R, all None here."""
    if want["num_df"] is not None:
        return False
    assert (row.sum_sq, row.mean_sq, row.num_df, row.den_df, row.f_value, row.p_value) == (
        None, None, None, None, None, None)
    assert all(want[k] is None for k in ("sum_sq", "den_df", "f_value", "p_value"))
    return True


def _relative(actual: float | None, expected: float) -> float:
    assert actual is not None
    return abs(actual - expected) / abs(expected)


@pytest.mark.parametrize(("name", "ddf", "type_"), TABLES)
def test_table_at_lme4s_optimum_is_lmertests(name: str, ddf: str, type_: str) -> None:
    expected = CASES[name]["anova"][ddf][type_]
    got = table(name, at_lme4_optimum(name), ddf, type_)
    assert got.type == int(type_) and got.ddf == ddf
    assert [r.term for r in got.rows] == [r["term"] for r in expected]
    df_tol = 1e-8 if ddf == "Kenward-Roger" else DF_TOLERANCE.get(name, 1e-5)
    for row, want in zip(got.rows, expected, strict=True):
        if _untested(row, want):
            continue
        assert row.num_df == want["num_df"]
        for field in ("sum_sq", "mean_sq", "f_value"):
            assert _relative(getattr(row, field), want[field]) <= 1e-8, field
        assert _relative(row.den_df, want["den_df"]) <= df_tol
        assert _relative(row.p_value, want["p_value"]) <= 50 * df_tol


@pytest.mark.parametrize(("name", "ddf", "type_"), TABLES)
def test_table_at_our_optimum_is_close_to_lmertests(name: str, ddf: str, type_: str) -> None:
    expected = CASES[name]["anova"][ddf][type_]
    got = table(name, fitted(name).result, ddf, type_)
    assert [r.term for r in got.rows] == [r["term"] for r in expected]
    for row, want in zip(got.rows, expected, strict=True):
        if _untested(row, want):
            continue
        assert row.num_df == want["num_df"]
        for field in ("sum_sq", "mean_sq", "f_value", "den_df"):
            assert _relative(getattr(row, field), want[field]) <= 1e-2, field
        assert row.p_value is not None
        assert abs(row.p_value - want["p_value"]) <= max(5e-2 * want["p_value"], 1e-8)


def test_intercept_only_model_has_an_empty_table() -> None:
    # lmerTest: no fixed term, no row (the intercept is not tested)
    name = "penicillin_crossed"
    assert CASES[name]["anova"]["Satterthwaite"]["3"] == []
    assert table(name, fitted(name).result, "Satterthwaite", "3").rows == ()


def test_kenward_roger_refuses_an_ml_fit() -> None:
    with pytest.raises(InferenceError, match="only available for REML fits"):
        table("sleepstudy_ml", fitted("sleepstudy_ml").result, "Kenward-Roger", "3")


def test_types_outside_one_to_three_and_least_squares_fits_are_refused() -> None:
    with pytest.raises(InferenceError, match="1, 2 or 3"):
        table("cake_reml", fitted("cake_reml").result, "Satterthwaite", "4")
    lm = fit_model("angle ~ recipe * temp", data("cake_reml")).result
    with pytest.raises(InferenceError, match="mixed models"):
        lmm_anova(parse_formula("angle ~ recipe * temp"), data("cake_reml"), lm, 3,
                  "Satterthwaite")


def test_kenward_roger_refuses_more_rows_than_its_dense_covariance_takes() -> None:
    rng = np.random.default_rng(12)
    n = MAX_ROWS + 1
    frame = pd.DataFrame({"x": rng.normal(size=n), "g": [f"g{i % 50}" for i in range(n)]})
    frame["y"] = frame["x"] + rng.normal(size=50)[np.arange(n) % 50] + rng.normal(size=n)
    formula = "y ~ x + (1 | g)"
    result = fit_model(formula, frame).result
    with pytest.raises(KenwardRogerTooLarge, match="ddf=Satterthwaite"):
        lmm_anova(parse_formula(formula), frame, result, 3, "Kenward-Roger")
    # Satterthwaite's cost does not grow with n² and answers
    assert lmm_anova(parse_formula(formula), frame, result, 3, "Satterthwaite").rows
