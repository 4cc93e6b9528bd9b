"""Design matrices against R's model.matrix and lme4's grouping factors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from service.stats.design import build_design, check_columns
from service.stats.errors import DesignError
from service.stats.formula import parse_formula
from tests.stats.design_formulas import (
    bar,
    c,
    call,
    formula,
    load,
    num,
    power,
    reference_cases,
    term,
)

CASES = reference_cases()


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_reference_names_and_group_sizes(case: dict[str, Any]) -> None:
    design = build_design(parse_formula(case["formula"]), load(case))
    assert list(design.fixed_names) == list(case["fixef"])
    assert design.n_obs == case["n_obs"]
    sizes: dict[str, int] = {}
    for block in design.random:
        assert sizes.setdefault(block.group, block.n_levels) == block.n_levels
        assert block.codes.min() == 0 and block.codes.max() == block.n_levels - 1
    assert sizes == case.get("n_groups", {})


def test_reference_group_levels_and_terms() -> None:
    design = build_design(parse_formula("Reaction ~ Days + (Days || Subject)"),
                          load("sleepstudy.csv"))
    assert [(b.group, b.terms) for b in design.random] == [
        ("Subject", ("(Intercept)",)), ("Subject", ("Days",))]
    pastes = build_design(parse_formula("strength ~ 1 + (1 | batch/cask)"),
                          load("pastes.csv"))
    nested = pastes.random[0]
    assert nested.group == "cask:batch" and nested.levels[:3] == ("a:A", "a:B", "a:C")
    cake = build_design(parse_formula("angle ~ recipe * temp + (1 | recipe:replicate)"),
                        load("cake.csv"))
    # lme4 1.1-31: interaction(recipe, replicate, lex.order = TRUE, drop = TRUE), so each
    # factor's own order (replicate numerically): levels(getME(fit, "flist")[[1]]) in R
    assert cake.random[0].levels[:3] == ("A:1", "A:2", "A:3")


def test_treatment_contrasts_and_interaction_columns() -> None:
    data = pd.DataFrame({"y": [1.0, 2, 3, 4, 5, 6], "x": [1.0, 2, 3, 4, 5, 7],
                         "f": ["b", "a", "c", "a", "b", "c"]})
    design = build_design(formula("y", term("x"), term("f"), term("x", "f")), data)
    assert design.fixed_names == ("(Intercept)", "x", "fb", "fc", "x:fb", "x:fc")
    expected_fb = np.array([1, 0, 0, 0, 1, 0.0])
    np.testing.assert_array_equal(design.X[:, 2], expected_fb)
    np.testing.assert_array_equal(design.X[:, 4], expected_fb * data["x"].to_numpy())


def test_factor_without_marginal_gets_full_indicator_coding() -> None:
    data = pd.DataFrame({"y": np.arange(8.0), "x": np.arange(8.0) ** 1.5,
                         "f": list("abab" * 2), "g": list("uuvv" * 2)})
    # y ~ x:f (with intercept): R codes f fully because x is not in the model.
    assert build_design(formula("y", term("x", "f")), data).fixed_names == (
        "(Intercept)", "x:fa", "x:fb")
    # y ~ f + f:g: g fully coded inside f:g (g's margin is absent), first factor fastest.
    assert build_design(formula("y", term("f"), term("f", "g")), data).fixed_names == (
        "(Intercept)", "fb", "fa:gv", "fb:gv")
    # y ~ 0 + f + g: without an intercept the first factor is fully coded.
    assert build_design(formula("y", term("f"), term("g"), intercept=False),
                        data).fixed_names == ("fa", "fb", "gv")


def test_booleans_forced_factors_and_numeric_groups() -> None:
    data = pd.DataFrame({"y": np.arange(6.0), "flag": [True, False] * 3,
                         "n": [3, 1, 2, 3, 1, 2], "g": [10, 10, 9, 9, 1, 1]})
    design = build_design(
        formula("y", term("flag"), term(call("factor", c("n"))), random=(bar("g"),)), data)
    assert design.fixed_names == ("(Intercept)", "flagTRUE", "factor(n)2", "factor(n)3")
    assert design.random[0].levels == ("1", "9", "10")  # numeric group levels sort as numbers
    np.testing.assert_array_equal(design.random[0].codes, [2, 2, 1, 1, 0, 0])


def test_functions_scale_and_identity() -> None:
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    data = pd.DataFrame({"y": np.arange(5.0), "x": x})
    terms = [term(call("log", c("x"))), term(call("sqrt", c("x"))),
             term(call("scale", c("x"))), term(call("I", power(c("x"), num(2))))]
    design = build_design(formula("y", *terms), data)
    assert design.fixed_names == ("(Intercept)", "log(x)", "sqrt(x)", "scale(x)", "I(x^2)")
    # Elementwise functions: exact up to one rounding (1e-15 relative).
    np.testing.assert_allclose(design.X[:, 1], np.log(x), rtol=1e-15)
    np.testing.assert_allclose(design.X[:, 4], x**2, rtol=1e-15)
    # R's scale: centre by the mean, divide by the n-1 standard deviation (6.0 exactly here
    # would need sd; compare with the formula computed independently).
    sd = np.sqrt(((x - x.mean()) ** 2).sum() / 4)
    np.testing.assert_allclose(design.X[:, 3], (x - x.mean()) / sd, rtol=1e-14)


def test_poly_matches_r_poly_of_1_to_10() -> None:
    # R's poly(1:10, 2) from its definition: column 1 = (x - 5.5)/sqrt(82.5); column 2 =
    # ((x - 5.5)^2 - 8.25)/sqrt(528), i.e. (12, 4, -2, -6, -8, -8, -6, -2, 4, 12)/sqrt(528).
    # R prints row 1 as -0.49543369, 0.52223297.
    x = np.arange(1.0, 11.0)
    data = pd.DataFrame({"y": x**3, "x": x})
    design = build_design(formula("y", term(call("poly", c("x"), num(2)))), data)
    assert design.fixed_names == ("(Intercept)", "poly(x, 2)1", "poly(x, 2)2")
    quadratic = np.array([12, 4, -2, -6, -8, -8, -6, -2, 4, 12]) / np.sqrt(528.0)
    # The recurrence and R's QR agree to rounding: 1e-14 absolute on values of order 0.5.
    np.testing.assert_allclose(design.X[:, 1], (x - 5.5) / np.sqrt(82.5), atol=1e-14)
    np.testing.assert_allclose(design.X[:, 2], quadratic, atol=1e-14)
    np.testing.assert_allclose(design.X[0, 1:], [-0.49543369, 0.52223297], atol=5e-9)
    params = design.encoder.params["poly(x, 2)"]
    assert params["alpha"] == pytest.approx([5.5, 5.5], abs=1e-12)
    assert params["norm2"] == pytest.approx([1.0, 10.0, 82.5, 528.0], rel=1e-12)


def test_rows_with_missing_values_are_dropped_and_counted() -> None:
    data = pd.DataFrame({"y": [1.0, np.nan, 3, 4, 5, 6], "x": [1.0, 2, None, 4, 5, 6],
                         "f": ["a", "b", "a", None, "b", "a"], "unused": [np.nan] * 6})
    design = build_design(formula("y", term("x"), term("f")), data)
    assert design.n_dropped_missing == 3
    np.testing.assert_array_equal(design.rows, [0, 4, 5])
    np.testing.assert_array_equal(design.y, [1.0, 5, 6])


def test_rank_deficiency_drops_the_aliased_column_with_a_message() -> None:
    data = pd.DataFrame({"y": np.arange(6.0), "z": [0.0, 1, 0, 1, 0, 1],
                         "x": ["A", "B", "A", "B", "A", "B"]})
    design = build_design(formula("y", term("z"), term("x")), data)
    assert design.fixed_names == ("(Intercept)", "z")
    assert design.dropped_aliased == ("xB",)
    assert design.messages == (
        "fixed-effect model matrix is rank deficient so dropping 1 column: xB",)
    assert design.X.shape == (6, 2)


def test_unknown_columns_listed_at_once_with_suggestions() -> None:
    f = formula("Mood", term("Exercize"), term("Stat"), term("Zzz"))
    with pytest.raises(DesignError) as info:
        check_columns(f, {"Mood": "numeric", "Exercise": "numeric", "State": "categorical"})
    assert str(info.value) == ("The following formula variables are not present in the "
                               "dataset: Exercize (did you mean Exercise?), Stat (did you "
                               "mean State?), Zzz")


def test_categorical_where_a_number_is_needed() -> None:
    kinds = {"Mood": "numeric", "State": "categorical", "Label": "categorical"}
    with pytest.raises(DesignError, match=r"column 'State' is categorical; log\(\) needs"):
        check_columns(formula("Mood", term(call("log", c("State")))), kinds)
    with pytest.raises(DesignError, match=r"poly\(\) needs a numeric column"):
        check_columns(formula("Mood", term(call("poly", c("State"), num(2)))), kinds)
    with pytest.raises(DesignError, match="response must be numeric"):
        check_columns(formula("Label", term("State")), kinds)


def test_design_errors_for_unusable_data() -> None:
    data = pd.DataFrame({"y": [1.0, 2, 3], "x": [1.0, -2, 3], "g": ["a", "a", "a"]})
    with pytest.raises(DesignError, match="grouping factor 'g' has 1 level"):
        build_design(formula("y", term("x"), random=(bar("g"),)), data)
    with pytest.raises(DesignError, match="no rows are left"):
        build_design(formula("y", term("x")), data.assign(x=np.nan))
    with pytest.raises(DesignError, match="only 3 rows are left for 4"):
        wide = data.assign(a=[1.0, 5, 2], b=[3.0, 1, 1])
        build_design(formula("y", term("x"), term("a"), term("b")), wide)
    with pytest.raises(DesignError, match=r"log\(x\) gives NaN.*column 'x'"):
        build_design(formula("y", term(call("log", c("x")))), data)


def test_random_covariates_intercept_first_and_factor_contrasts() -> None:
    # 18 rows for 3 groups x 4 random effects: enough rows for lme4's identifiability check
    data = pd.DataFrame({"y": np.arange(18.0), "x": np.arange(18.0) / 2,
                         "f": list("pqr") * 6, "g": list("aaaaaabbbbbbcccccc")})
    design = build_design(formula("y", term("x"), random=(bar("g", term("x"), term("f")),)),
                          data)
    block = design.random[0]
    assert block.terms == ("(Intercept)", "x", "fq", "fr")
    np.testing.assert_array_equal(block.covariates[:, 0], np.ones(18))
    np.testing.assert_array_equal(block.covariates[:, 1], data["x"].to_numpy())
    assert block.covariates.shape == (18, 4)


@pytest.mark.parametrize(("text", "names"), [
    ("y ~ x * f", ("(Intercept)", "x", "fb", "fc", "x:fb", "x:fc")),
    ("y ~ f + x + x:f", ("(Intercept)", "fb", "fc", "x", "fb:x", "fc:x")),
    ("y ~ poly(x, degree = 2)", ("(Intercept)", "poly(x, degree = 2)1", "poly(x, degree = 2)2")),
    ("y ~ log(x) + I((x + 1)^2) + 0", ("log(x)", "I((x + 1)^2)")),
    ("y ~ 0 + f", ("fa", "fb", "fc")),
])
def test_names_from_parsed_formulas_are_rs(text: str, names: tuple[str, ...]) -> None:
    data = pd.DataFrame({"y": np.arange(9.0), "x": np.arange(1.0, 10.0) ** 1.3,
                         "f": list("abc" * 3)})
    assert build_design(parse_formula(text), data).fixed_names == names


def test_poly_follows_rs_qr_definition_and_coefficients() -> None:
    # R's poly(x, 3), transcribed from its source: QR of outer(x - mean, 0:3, "^"),
    # Z = qr.qy(QR, diag(R)), norm2 = colSums(Z^2), alpha = colSums(x_c Z^2)/norm2 + mean,
    # columns Z[, -1] / sqrt(norm2[-1]). Rounding differences only: 1e-12 absolute.
    x = np.array([0.3, 1.7, 2.2, 2.9, 4.4, 5.0, 6.8, 7.1, 9.5, 12.0])
    centred = x - x.mean()
    q, r = np.linalg.qr(np.vander(centred, 4, increasing=True))
    z = q * np.diag(r)
    norm2 = (z**2).sum(axis=0)
    alpha = (centred @ z**2) / norm2 + x.mean()
    data = pd.DataFrame({"y": np.sin(x), "x": x})
    design = build_design(formula("y", term(call("poly", c("x"), num(3)))), data)
    np.testing.assert_allclose(design.X[:, 1:], z[:, 1:] / np.sqrt(norm2[1:]), atol=1e-12)
    params = design.encoder.params["poly(x, 3)"]
    np.testing.assert_allclose(params["alpha"], alpha[:3], rtol=1e-12)
    np.testing.assert_allclose(params["norm2"], [1.0, *norm2], rtol=1e-12)


def test_random_effects_need_more_rows_than_levels_and_effects() -> None:
    # lme4 refuses both by default (check.nobs.vs.nlev, check.nobs.vs.nRE): as many groups
    # (or random effects) as rows leave the variances unidentifiable.
    one_row_each = pd.DataFrame({"y": [1.0, 2, 4, 3], "x": [0.0, 1, 2, 3],
                                 "g": ["a", "b", "c", "d"]})
    with pytest.raises(DesignError, match=r"levels .* must be < number of observations"):
        build_design(parse_formula("y ~ x + (1 | g)"), one_row_each)
    two_rows_each = pd.DataFrame({"y": [1.0, 2, 4, 3, 5, 7], "x": [0.0, 1, 2, 3, 1, 0],
                                  "g": ["a", "a", "b", "b", "c", "c"]})
    build_design(parse_formula("y ~ x + (1 | g)"), two_rows_each)
    with pytest.raises(DesignError, match=r"observations \(=6\) <= number of random effects"):
        build_design(parse_formula("y ~ x + (x | g)"), two_rows_each)
