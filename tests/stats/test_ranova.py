"""lmerTest's ranova against R (tests/data/r/lmm_anova.R, tests/data/expected/lmm_anova.json):
sleepstudy REML and ML, a least squares refit (cake, REML log-likelihood of lm), two
terms of one factor and crossed factors.

Tolerances: log-likelihoods within 1e-6 absolute (the optimizers agree on the deviance to
~1e-8 here; lme4_fit_check's tolerance for it is 1e-4 on -2 log L), the LRT within 2e-6
absolute (twice that), its p-value within 1e-5 relative; npar, Df and row names exactly.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from service.stats.fit import fit_model
from service.stats.formula import parse_formula
from service.stats.formula.bar_labels import bar_labels
from service.stats.inference import InferenceError
from service.stats.ranova import ranova, reductions
from tests.stats.test_ols import DATA

CASES: dict[str, dict[str, Any]] = {
    name: case for name, case in json.loads(
        (DATA / "expected" / "lmm_anova.json").read_text())["cases"].items()
    if "ranova" in case}


@pytest.mark.parametrize("name", list(CASES))
def test_ranova_is_lmertests(name: str) -> None:
    case = CASES[name]
    data = pd.read_csv(DATA / case["dataset"])
    fit = fit_model(case["formula"], data, case["method"])
    table = ranova(parse_formula(case["formula"]), data, fit.result)
    assert [r.term for r in table.rows] == [r["term"] for r in case["ranova"]]
    for row, want in zip(table.rows, case["ranova"], strict=True):
        assert row.npar == want["npar"]
        assert row.df == want["Df"]
        assert abs(row.loglik - want["logLik"]) <= 1e-6
        assert abs(row.aic - want["AIC"]) <= 2e-6
        if want["LRT"] is None:
            assert row.lrt is None and row.p_value is None
            continue
        assert row.lrt is not None and row.p_value is not None
        assert abs(row.lrt - want["LRT"]) <= 2e-6
        assert abs(row.p_value - want["p_value"]) <= 1e-5 * want["p_value"]


def test_bar_labels_are_rs_findbars() -> None:
    # deparse(findbars(~ x + (1|a/b) + (x||g) + (1 + x | h))) in lme4 1.1-31
    assert bar_labels("y ~ x + (1|a/b) + (x||g) + (1 + x | h)") == (
        "1 | b:a", "1 | a", "1 | g", "0 + x | g", "1 + x | h")
    assert bar_labels("Reaction ~ Days + (Days | Subject)") == ("Days | Subject",)


def test_reductions_follow_drop_scope() -> None:
    formula = parse_formula("y ~ x + (1 + x + z + x:z | g) + (0 + x | h)")
    found = {r.name: r.random for r in reductions(formula, bar_labels(formula.text))}
    # only x:z can leave the first term (x and z are in it); 0 + x becomes 1
    assert list(found) == ["x:z in (1 + x + z + x:z | g)", "x in (0 + x | h)"]
    first = found["x:z in (1 + x + z + x:z | g)"]
    assert [t.label for t in first[-1].terms] == ["x", "z"] and first[-1].intercept
    last = found["x in (0 + x | h)"][-1]
    assert last.intercept and last.terms == () and last.group == ("h",)


def test_ranova_refuses_a_least_squares_fit() -> None:
    data = pd.read_csv(DATA / "sleepstudy.csv")
    lm = fit_model("Reaction ~ Days", data).result
    with pytest.raises(InferenceError, match="mixed models"):
        ranova(parse_formula("Reaction ~ Days"), data, lm)


def test_double_bar_is_reduced_as_its_expansion() -> None:
    # lme4 expands (Days || Subject) to (1 | Subject) + (0 + Days | Subject) before ranova
    # sees it: R's table (printed by ranova on the || model) is sleepstudy_two_terms's
    case = CASES["sleepstudy_two_terms"]
    data = pd.read_csv(DATA / case["dataset"])
    formula = "Reaction ~ Days + (Days || Subject)"
    table = ranova(parse_formula(formula), data, fit_model(formula, data).result)
    assert [r.term for r in table.rows] == [r["term"] for r in case["ranova"]]
    assert [r.npar for r in table.rows] == [r["npar"] for r in case["ranova"]]
    for row, want in zip(table.rows, case["ranova"], strict=True):
        assert abs(row.loglik - want["logLik"]) <= 1e-6


def test_a_reduction_that_changes_the_rows_is_refused() -> None:
    # z is missing on some rows: the full model drops them, the model without z would not
    # (lmerTest stops: "number of rows in use has changed: remove missing values?")
    data = pd.read_csv(DATA / "sleepstudy.csv")
    data["z"] = data["Days"].where(data.index % 7 != 0)
    formula = "Reaction ~ Days + (1 | Subject) + (0 + z | Subject)"
    fit = fit_model(formula, data)
    with pytest.raises(InferenceError, match="changes the rows used"):
        ranova(parse_formula(formula), data, fit.result)
