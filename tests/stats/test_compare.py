"""Model comparison against R's anova (tests/data/expected/compare_*.json).

The inputs are R's own log-likelihoods and RMSEs from the model JSONs, so the table is a
pure function of them: AIC, BIC, deviance, χ², df and p are checked to 1e-9 relative
(rounding of the 15 printed digits, amplified at most ~10x in the χ² difference).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
import pytest

from service.stats.compare import ComparisonEntry, ComparisonError, anova, compare_models, f_test
from service.stats.errors import StatsError
from service.stats.ols import fit_ols
from tests.stats.test_ols import DATA, expected, hand_design

RTOL = 1e-9


def check_table(rows: list[dict[str, Any]], ref: dict[str, Any], rtol: float) -> None:
    assert [r["model_id"] for r in rows] == [r["model"] for r in ref["table"]]
    for got, want in zip(rows, ref["table"], strict=True):
        assert got["npar"] == want["npar"]
        assert got["df"] == want["df"]
        for key in ("aic", "bic", "loglik", "deviance", "chisq", "p_value"):
            if want[key] is None:
                assert got[key] is None, key
            else:
                assert got[key] == pytest.approx(want[key], rel=rtol), key
        assert got["rmse"] == pytest.approx(ref["rmse"][got["model_id"]], rel=rtol)


def mood_entries() -> list[ComparisonEntry]:
    lm, lmm = expected("mood_lm"), expected("mood_lmer_ml")
    common: dict[str, Any] = {"dataset_id": "mood", "n_obs": 200, "response": "Mood"}
    return [
        # Given in the "wrong" order on purpose: the table orders by npar.
        ComparisonEntry(model_id="mood_lmer_ml", kind="lmm", method="ML",
                        fixed_terms=("(Intercept)", "Exercise"),
                        npar=len(lmm["fixef"]) + len(lmm["theta"]) + 1,
                        loglik=lmm["loglik"], rmse=lmm["rmse"], **common),
        ComparisonEntry(model_id="mood_lm", kind="lm", method="OLS",
                        fixed_terms=("(Intercept)", "Exercise"), npar=len(lm["fixef"]) + 1,
                        loglik=lm["loglik"], rmse=lm["rmse"], **common),
    ]


def test_mood_lm_vs_lmer_ml_reproduces_anova() -> None:
    table = compare_models(mood_entries())
    check_table(table.to_dict()["rows"], expected("compare_mood_models"), RTOL)


def test_mood_lm_from_our_own_fit() -> None:
    # Our OLS in place of R's numbers: 1e-6 as the OLS tests.
    fit = fit_ols(hand_design(pd.read_csv(DATA / "mood.csv"), "Mood", ["Exercise"]))
    lmm_entry, lm_entry = mood_entries()
    ours = replace(lm_entry, npar=fit.metrics.npar, loglik=fit.metrics.loglik,
                   rmse=fit.metrics.rmse)
    check_table(compare_models([ours, lmm_entry]).to_dict()["rows"],
                expected("compare_mood_models"), 1e-6)


def sleepstudy_entries(reml_loglik: float) -> list[ComparisonEntry]:
    uncorr, corr = expected("sleepstudy_uncorr"), expected("sleepstudy_reml")
    common: dict[str, Any] = {"dataset_id": "sleepstudy", "n_obs": 180,
                              "response": "Reaction", "kind": "lmm", "method": "ML",
                              "fixed_terms": ("(Intercept)", "Days")}
    return [
        ComparisonEntry(model_id="sleepstudy_reml", npar=6, loglik=reml_loglik,
                        rmse=corr["rmse"], **common),
        # anova refits by ML; deviance_ml in the REML model's JSON is that refit's deviance.
        ComparisonEntry(model_id="sleepstudy_uncorr", npar=5,
                        loglik=-uncorr["deviance_ml"] / 2, rmse=uncorr["rmse"], **common),
    ]


def test_sleepstudy_corr_vs_uncorr_reproduces_anova() -> None:
    loglik = -expected("sleepstudy_reml")["deviance_ml"] / 2
    table = compare_models(sleepstudy_entries(loglik))
    check_table(table.to_dict()["rows"], expected("compare_sleepstudy_corr_vs_uncorr"), RTOL)


def test_sleepstudy_with_the_separate_ml_fit() -> None:
    # sleepstudy_ml.json is a separate ML fit whose loglik differs from the anova refit's
    # by 1e-11 relative; the χ² of 0.064 amplifies that to ~4e-7, hence 1e-5 here.
    loglik = expected("sleepstudy_ml")["loglik"]
    table = compare_models(sleepstudy_entries(loglik))
    check_table(table.to_dict()["rows"], expected("compare_sleepstudy_corr_vs_uncorr"), 1e-5)


def test_non_nested_fixed_effects_are_refused() -> None:
    lmm_entry, lm_entry = mood_entries()
    state = replace(lm_entry, model_id="mood_lm_state", npar=6,
                    fixed_terms=("(Intercept)", "Exercise", "State"))
    # mood_lm_state (6 parameters) and mood_lmer_ml (6) tie; given first, State is extra.
    with pytest.raises(ComparisonError, match="not nested.*State"):
        compare_models([state, lmm_entry])
    # The error is a StatsError: the web layer turns it into a 422.
    assert issubclass(ComparisonError, StatsError)


def test_nested_three_models_in_a_chain() -> None:
    lmm_entry, lm_entry = mood_entries()
    state = replace(lm_entry, model_id="mood_lm_state", npar=6,
                    fixed_terms=("(Intercept)", "Exercise", "State"), loglik=-313.8)
    table = compare_models([state, lm_entry])
    assert [r.model_id for r in table.rows] == ["mood_lm", "mood_lm_state"]
    assert table.rows[1].df == 3
    assert table.rows[0].chisq is None and table.rows[0].p_value is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dataset_id": "other"}, "different datasets"),
        ({"n_obs": 199}, "different numbers of rows"),
        ({"response": "log(Mood)"}, "different responses"),
        ({"method": "REML"}, "refit REML models by ML"),
        ({"kind": "lm_by_group"}, "per-group"),
        ({"model_id": "mood_lmer_ml"}, "repeated"),
    ],
)
def test_incomparable_models_are_refused(change: dict[str, Any], message: str) -> None:
    lmm_entry, lm_entry = mood_entries()
    with pytest.raises(ComparisonError, match=message):
        compare_models([lmm_entry, replace(lm_entry, **change)])


def test_one_model_is_not_a_comparison() -> None:
    with pytest.raises(ComparisonError, match="at least two"):
        compare_models(mood_entries()[:1])


def test_entries_from_our_own_fits_reproduce_the_mood_comparison() -> None:
    # Our OLS and our ML mixed-model fit end to end: 1e-5 relative, the mixed-model
    # engine's agreement with lme4 (the χ² of 80 is well conditioned).
    from service.stats.compare import comparison_entry
    from service.stats.design import build_design
    from service.stats.formula import parse_formula
    from service.stats.lmm import fit_lmm

    data = pd.read_csv(DATA / "mood.csv")
    lm_formula = parse_formula("Mood ~ Exercise")
    lmm_formula = parse_formula("Mood ~ Exercise + (1 + Exercise | State)")
    lm = comparison_entry("mood_lm", "mood", lm_formula,
                          fit_ols(build_design(lm_formula, data)))
    lmm = comparison_entry("mood_lmer_ml", "mood", lmm_formula,
                           fit_lmm(build_design(lmm_formula, data), "ML"))
    assert lm.fixed_terms == lmm.fixed_terms == ("(Intercept)", "Exercise")
    assert lm.response == "Mood"
    ref = expected("compare_mood_models")
    check_table(compare_models([lmm, lm]).to_dict()["rows"], ref, 1e-5)
    reml = comparison_entry("reml", "mood", lmm_formula,
                            fit_lmm(build_design(lmm_formula, data), "REML"))
    with pytest.raises(ComparisonError, match="REML"):
        compare_models([lm, reml])


# --- F tests of least squares fits: R's anova.lm (tests/data/r/compare_lm_f.R) -------------

F_TERMS = {"mood_lm": ("(Intercept)", "Exercise"),
           "mood_lm_state": ("(Intercept)", "Exercise", "State"),
           "mood_lm_interaction": ("(Intercept)", "Exercise", "State", "Exercise:State")}


def f_entries(names: list[str]) -> list[ComparisonEntry]:
    """Entries holding R's own Res.Df, RSS and log-likelihoods."""
    ref = expected("compare_mood_lm_f")
    by_name = {row["model"]: row for row in ref["three"]}
    return [ComparisonEntry(model_id=name, kind="lm", method="OLS", dataset_id="mood",
                            n_obs=200, response="Mood", fixed_terms=F_TERMS[name],
                            npar=200 - int(by_name[name]["res_df"]) + 1,
                            loglik=ref["loglik"][name], rmse=1.0,
                            df_residual=by_name[name]["res_df"], rss=by_name[name]["rss"])
            for name in names]


@pytest.mark.parametrize("case", ["two", "reversed", "three"])
def test_f_test_reproduces_anova_lm(case: str) -> None:
    want = expected("compare_mood_lm_f")[case]
    table = anova(f_entries([row["model"] for row in want]))
    assert table.test == "F" and table.to_dict()["test"] == "F"
    assert [row.model_id for row in table.rows] == [row["model"] for row in want]
    for got, ref in zip(table.rows, want, strict=True):
        assert got.chisq is None and got.df == ref["df"]
        for value, key in ((got.res_df, "res_df"), (got.rss, "rss"),
                           (got.sum_of_sq, "sum_of_sq"), (got.f_statistic, "f"),
                           (got.p_value, "p_value")):
            assert (value is None) == (ref[key] is None), key
            if value is not None:
                assert value == pytest.approx(ref[key], rel=RTOL), key


def test_f_test_needs_least_squares_fits_and_nesting() -> None:
    lm, state = f_entries(["mood_lm", "mood_lm_state"])
    lmm_entry, _ = mood_entries()
    # a mixed model among them: the likelihood-ratio table of lme4's anova
    assert anova([lm, lmm_entry]).test == "Chisq"
    with pytest.raises(ComparisonError, match="least squares"):
        f_test([lm, lmm_entry])
    state_only = replace(state, fixed_terms=("(Intercept)", "State"))
    with pytest.raises(ComparisonError, match="not nested"):
        f_test([lm, state_only])
    with pytest.raises(ComparisonError, match="different numbers of rows"):
        f_test([lm, replace(state, n_obs=197)])
    # equal residual df (Df 0): no F and no p-value, as stat.anova
    same = f_test([lm, replace(lm, model_id="again")])
    assert same.rows[1].df == 0 and same.rows[1].f_statistic is None
    assert same.rows[1].p_value is None
