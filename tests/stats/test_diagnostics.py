"""Residual diagnostics against R.

Reference values below were computed with R 4.2.2 and lmtest 0.9-40 on tests/data/*.csv:
``bptest(lm(...))`` (default studentize = TRUE), ``rstandard(lm(...))`` and
``tapply(resid(lm(Mood ~ Exercise, mood)), mood$State, sd)``. Tolerance 1e-8 relative:
the same closed-form computations in double precision, printed by R to 15 digits.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.diagnostic import het_breuschpagan
from statsmodels.stats.outliers_influence import OLSInfluence

from service.stats.design.types import Design, RandomBlock
from service.stats.diagnostics import (
    breusch_pagan,
    residual_spread,
    residual_table,
)
from service.stats.errors import StatsError
from service.stats.ols import fit_ols, fitted_values
from tests.stats.test_ols import DATA, expected, hand_design

RTOL = 1e-8

# bptest(...): statistic, df, p-value
R_BPTEST = {
    ("mood.csv", "Mood", "Exercise", None): (12.9297124723957, 1, 0.000323407454755605),
    ("mood.csv", "Mood", "Exercise", "State"): (38.5172692147975, 4, 8.76377930646463e-08),
    ("sleepstudy.csv", "Reaction", "Days", None): (17.0271214552413, 1, 3.68496895643764e-05),
}
R_RSTANDARD_STATE_HEAD = [-1.95959451314344, -0.997007702286814, -0.136405895430861,
                          -0.385776040883991, -1.42444291659904]
R_RESID_SD_BY_STATE = {"A": 0.854662456047624, "B": 1.293312820633747,
                       "C": 1.234147906866448, "D": 1.907885870439514}


@pytest.mark.parametrize("case", sorted(R_BPTEST, key=str))
def test_breusch_pagan_matches_lmtest(case: tuple[str, str, str, str | None]) -> None:
    file, response, x, factor = case
    design = hand_design(pd.read_csv(DATA / file), response, [x], factor)
    fit = fit_ols(design)
    statistic, df, p_value = R_BPTEST[case]
    assert fit.metrics.bp_statistic == pytest.approx(statistic, rel=RTOL)
    assert fit.metrics.bp_df == df
    assert fit.metrics.bp_p_value == pytest.approx(p_value, rel=RTOL)

    # With an intercept the studentized statistic is statsmodels' robust (Koenker) version.
    resid = design.y - fitted_values(design, fit)  # type: ignore[operator]
    lm_stat, lm_p, _, _ = het_breuschpagan(resid, design.X, robust=True)
    assert lm_stat == pytest.approx(statistic, rel=RTOL)
    assert lm_p == pytest.approx(p_value, rel=RTOL)


def test_breusch_pagan_needs_intercept_and_regressor_as_bptest() -> None:
    df = pd.read_csv(DATA / "sleepstudy.csv")
    no_intercept = hand_design(df, "Reaction", ["Days"], intercept=False)
    assert fit_ols(no_intercept).metrics.bp_statistic is None
    only_intercept = hand_design(df, "Reaction", [])
    assert breusch_pagan(only_intercept.X, np.ones(len(df)) * 0.5 + np.arange(len(df))) is None


def test_lm_residual_table_uses_rstandard() -> None:
    data = pd.read_csv(DATA / "mood.csv")
    design = hand_design(data, "Mood", ["Exercise"], "State")
    fit = fit_ols(design)
    table = residual_table(design, fitted_values(design, fit), data=data,
                           group_columns=["State"])
    assert list(table.columns) == ["row", "fitted", "residual", "std_residual", "State"]
    np.testing.assert_allclose(table["std_residual"].head(5), R_RSTANDARD_STATE_HEAD, rtol=RTOL)
    np.testing.assert_allclose(table["fitted"], expected("mood_lm_state")["fitted"], rtol=1e-6)
    # rstandard is statsmodels' internally studentized residual: an independent check.
    ols_influence = OLSInfluence(_statsmodels_fit(design))
    np.testing.assert_allclose(table["std_residual"],
                               ols_influence.resid_studentized_internal, rtol=RTOL)
    assert table["State"].tolist() == data["State"].tolist()
    assert table["row"].tolist() == list(range(len(data)))


def test_lm_residual_spread_by_state_matches_r() -> None:
    data = pd.read_csv(DATA / "mood.csv")
    design = hand_design(data, "Mood", ["Exercise"])
    table = residual_table(design, fitted_values(design, fit_ols(design)), data=data,
                           group_columns=["State"])
    spread = residual_spread(table, ["State"])
    assert spread["level"].tolist() == ["A", "B", "C", "D"]
    assert spread["n_obs"].tolist() == [60, 45, 50, 45]
    for level, sd in R_RESID_SD_BY_STATE.items():
        got = spread.loc[spread["level"] == level, "residual_sd"].item()
        assert got == pytest.approx(sd, rel=RTOL)


def test_lmm_residual_table_divides_by_sigma() -> None:
    data = pd.read_csv(DATA / "mood.csv")
    ref = expected("mood_lmer_ml")
    design = _mood_lmm_design(data)
    table = residual_table(design, ref["fitted"], sigma=ref["sigma"])
    resid = data["Mood"].to_numpy() - np.asarray(ref["fitted"])
    np.testing.assert_allclose(table["residual"], resid, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(table["std_residual"], resid / ref["sigma"], rtol=1e-12)
    assert table["State"].tolist() == data["State"].tolist()
    # RMSE of these residuals is R's: a check that fitted values and rows line up.
    assert np.sqrt(np.mean(resid**2)) == pytest.approx(ref["rmse"], rel=1e-6)
    spread = residual_spread(table, ["State"])
    assert spread["residual_sd"].tolist() == pytest.approx(
        [float(np.std(resid[data["State"] == s], ddof=1)) for s in "ABCD"], rel=1e-12)


def test_lmm_residual_table_requires_sigma() -> None:
    data = pd.read_csv(DATA / "mood.csv")
    with pytest.raises(StatsError, match="sigma"):
        residual_table(_mood_lmm_design(data), expected("mood_lmer_ml")["fitted"])


def test_wrong_number_of_fitted_values_is_rejected() -> None:
    data = pd.read_csv(DATA / "mood.csv")
    design = hand_design(data, "Mood", ["Exercise"])
    with pytest.raises(StatsError, match="Expected 200 fitted values"):
        residual_table(design, np.zeros(3))


def _statsmodels_fit(design: Design) -> Any:
    import statsmodels.api as sm

    return sm.OLS(design.y, design.X).fit()


def _mood_lmm_design(data: pd.DataFrame) -> Design:
    levels = tuple(sorted(data["State"].unique()))
    codes = np.array([levels.index(s) for s in data["State"]], dtype=np.intp)
    x = data["Exercise"].to_numpy(dtype=float)
    block = RandomBlock(group="State", terms=("(Intercept)", "Exercise"), levels=levels,
                        codes=codes, covariates=np.column_stack([np.ones_like(x), x]))
    return Design(y=data["Mood"].to_numpy(dtype=float),
                  X=np.column_stack([np.ones_like(x), x]),
                  fixed_names=("(Intercept)", "Exercise"), random=(block,),
                  rows=np.arange(len(data), dtype=np.intp), response_name="Mood",
                  encoder=cast(Any, None))
