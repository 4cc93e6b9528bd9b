"""Per-group regressions against R's lme4::lmList (tests/data/expected/mood_lmlist.json;
pooled and unpooled coefficient tables in lmlist_pool.json, from tests/data/r/lmlist_pool.R).

Tolerance 1e-6 relative, as for lm: each group is an ordinary least squares fit.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from service.stats.errors import DesignError, FitError
from service.stats.fit import fit_model
from service.stats.formula import parse_formula
from service.stats.lmlist import by_group_residual_table, fit_by_group, split_by_group
from service.stats.ols import fit_ols
from tests.stats.test_ols import DATA, expected, hand_design

RTOL = 1e-6


def mood() -> pd.DataFrame:
    return pd.read_csv(DATA / "mood.csv")


def test_mood_lmlist_matches_r() -> None:
    ref = expected("mood_lmlist")["groups"]
    # each group's own standard errors: summary(lmList(...), pool = FALSE)
    fit = fit_by_group(parse_formula("Mood ~ Exercise | State"), mood(), pool=False)
    assert fit.kind == "lm_by_group"
    assert fit.fixed_effects == ()
    assert [g.level for g in fit.groups] == sorted(ref)
    for group in fit.groups:
        want = ref[group.level]
        assert group.error is None and group.metrics is not None
        assert group.n_obs == want["n_obs"]
        assert [fe.term for fe in group.fixed_effects] == list(want["fixef"])
        for fe in group.fixed_effects:
            assert fe.estimate == pytest.approx(want["fixef"][fe.term], rel=RTOL)
            assert fe.std_error == pytest.approx(want["fixef_se"][fe.term], rel=RTOL)
        assert group.metrics.sigma == pytest.approx(want["sigma"], rel=RTOL)
        assert group.metrics.r_squared == pytest.approx(want["r_squared"], rel=RTOL)
    # The example's point: the slope flips sign in state C.
    slopes = {g.level: g.fixed_effects[1].estimate for g in fit.groups}
    assert slopes["C"] < 0 < min(slopes["A"], slopes["B"], slopes["D"])


def test_pooled_metrics_are_sums_over_groups() -> None:
    fit = fit_by_group(parse_formula("Mood ~ Exercise | State"), mood())
    metrics = [g.metrics for g in fit.groups if g.metrics is not None]
    rss = sum(m.deviance for m in metrics)
    loglik = sum(m.loglik for m in metrics)
    # Sums of the same floats: exact up to summation order (1e-12).
    assert fit.metrics.n_obs == 200 and fit.metrics.npar == 12
    assert fit.metrics.df_residual == 192
    assert fit.metrics.loglik == pytest.approx(loglik, rel=1e-12)
    assert fit.metrics.aic == pytest.approx(-2 * loglik + 24, rel=1e-12)
    assert fit.metrics.bic == pytest.approx(-2 * loglik + math.log(200) * 12, rel=1e-12)
    assert fit.metrics.sigma == pytest.approx(math.sqrt(rss / 192), rel=1e-12)
    assert fit.metrics.rmse == pytest.approx(math.sqrt(rss / 200), rel=1e-12)


def test_small_group_is_reported_not_fatal() -> None:
    # A state with a single row cannot estimate intercept and slope.
    data = pd.concat([mood(), pd.DataFrame({"Exercise": [3.0], "State": ["E"],
                                            "Mood": [4.0]})], ignore_index=True)
    fit = fit_by_group(parse_formula("Mood ~ Exercise | State"), data)
    by_level = {g.level: g for g in fit.groups}
    assert list(by_level) == ["A", "B", "C", "D", "E"]
    assert by_level["E"].error is not None and by_level["E"].metrics is None
    assert by_level["E"].n_obs == 1 and by_level["E"].fixed_effects == ()
    assert any(m.startswith("E: not fitted") for m in fit.messages)
    assert fit.metrics.n_obs == 200


def test_constant_predictor_in_a_group_is_reported() -> None:
    data = mood()
    data.loc[data["State"] == "B", "Exercise"] = 2.0
    fit = fit_by_group(parse_formula("Mood ~ Exercise | State"), data)
    b = next(g for g in fit.groups if g.level == "B")
    # build_design drops the aliased column (R's lmList gives NA for it); the
    # intercept-only fit remains and the drop is reported under the group's name.
    assert b.error is None
    assert [fe.term for fe in b.fixed_effects] == ["(Intercept)"]
    assert any(m.startswith("B:") and "Exercise" in m for m in fit.messages)


def test_no_group_fits_is_a_fit_error() -> None:
    data = mood().groupby("State").head(1)
    with pytest.raises(FitError, match="No level of State could be fitted"):
        fit_by_group(parse_formula("Mood ~ Exercise | State"), data)


def test_numeric_group_levels_sort_as_numbers_and_missing_groups_are_dropped() -> None:
    data = pd.read_csv(DATA / "sleepstudy.csv")
    data.loc[0, "Subject"] = np.nan
    groups, n_missing = split_by_group(parse_formula("Reaction ~ Days | Subject"), data)
    levels = [g.level for g in groups]
    assert n_missing == 1
    assert levels == sorted(levels, key=int) and levels[0] == "308"
    assert sum(len(g.rows) for g in groups) == 179


def test_unknown_group_column_is_a_design_error() -> None:
    with pytest.raises(DesignError, match="not present"):
        split_by_group(parse_formula("Mood ~ Exercise | Region"), mood())


def test_residual_table_from_stored_result() -> None:
    data = mood()
    formula = parse_formula("Mood ~ Exercise | State")
    result = fit_by_group(formula, data)
    table = by_group_residual_table(formula, data, result)
    assert table["row"].tolist() == list(range(200))
    assert table["State"].tolist() == data["State"].tolist()
    # Each group's rows agree with a separate OLS fit of that group (1e-10: same algorithm).
    for state, part in data.groupby("State"):
        own = fit_ols(hand_design(part, "Mood", ["Exercise"]))
        rows = table[table["State"] == state]
        b0, b1 = (fe.estimate for fe in own.fixed_effects)
        np.testing.assert_allclose(rows["fitted"], b0 + b1 * part["Exercise"], rtol=1e-10)
    assert np.sqrt(np.mean(table["residual"] ** 2)) == pytest.approx(result.metrics.rmse,
                                                                     rel=1e-10)


NUMBERS = ("estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high")


@pytest.mark.parametrize(("case", "dataset"), [("mood", "mood.csv"), ("aliased", "aliased.csv")])
@pytest.mark.parametrize("pool", [True, False])
def test_coefficient_tables_pooled_or_not_match_lme4(case: str, dataset: str,
                                                     pool: bool) -> None:
    ref = expected("lmlist_pool")[case]
    fitted = fit_model(ref["formula"], pd.read_csv(DATA / dataset), pool=pool)
    result = fitted.result
    tables = ref["pooled" if pool else "unpooled"]
    assert [g.level for g in result.groups] == list(tables)
    for group in result.groups:
        want = tables[group.level]
        assert [fe.term for fe in group.fixed_effects] == list(want), group.level
        for fe in group.fixed_effects:
            if want[fe.term]["aliased"]:
                assert fe.aliased and fe.estimate is None
                continue
            for name in NUMBERS:
                assert getattr(fe, name) == pytest.approx(want[fe.term][name], rel=RTOL), (
                    group.level, fe.term, name)
            if pool:
                assert fe.df == ref["pooled_df"]
            else:
                assert group.metrics is not None and fe.df == group.metrics.df_residual
    # the model's sigma and df are lme4's pooledSD either way (an aliased coefficient
    # counts in lme4's df: 36 rows - 9 coefficients for the aliased case)
    assert result.metrics.sigma == pytest.approx(ref["pooled_sd"], rel=RTOL)
    assert result.metrics.df_residual == ref["pooled_df"]


def test_pooling_is_the_default() -> None:
    formula = parse_formula("Mood ~ Exercise | State")
    default = fit_by_group(formula, mood())
    pooled = fit_by_group(formula, mood(), pool=True)
    assert default == pooled
