"""The design encoder: JSON round trip, new data encoded as the fitting data was."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from service.stats.design import DesignEncoder, build_design
from service.stats.errors import PredictionError
from service.stats.formula import parse_formula
from service.stats.formula.tree import Formula
from tests.stats.design_formulas import (
    bar,
    c,
    call,
    formula,
    load,
    num,
    power,
    term,
)


def _rich_formula() -> Formula:
    """Every stateful and categorical feature at once."""
    return formula(
        call("log", c("y")),
        term(call("scale", c("x"))), term(call("poly", c("x"), num(2))), term("f"),
        term(call("factor", c("k"))), term(call("I", power(c("x"), num(3)))),
        term("x", "f"),
        random=(bar("g", term("x")), bar(("g", "k"))))


def _rich_data(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "y": rng.uniform(1, 5, n), "x": rng.normal(3, 2, n),
        "f": rng.choice(["lo", "mid", "hi"], n), "k": rng.choice([1, 2, 3], n),
        "g": rng.choice(["s1", "s2", "s3", "s4"], n),
    })


def _roundtrip(encoder: DesignEncoder) -> DesignEncoder:
    return DesignEncoder.from_json(json.loads(json.dumps(encoder.to_json())))


def test_json_roundtrip_gives_identical_matrices_on_new_data() -> None:
    fitted = build_design(_rich_formula(), _rich_data(1, 60))
    stored = _roundtrip(fitted.encoder)
    new = _rich_data(2, 25)
    direct, restored = fitted.encoder.transform(new), stored.transform(new)
    assert direct.fixed_names == restored.fixed_names == fitted.fixed_names
    np.testing.assert_array_equal(direct.X, restored.X)
    np.testing.assert_array_equal(direct.y, restored.y)
    for a, b in zip(direct.random, restored.random, strict=True):
        assert (a.group, a.terms, a.levels) == (b.group, b.terms, b.levels)
        np.testing.assert_array_equal(a.codes, b.codes)
        np.testing.assert_array_equal(a.covariates, b.covariates)


def test_fitting_rows_are_reencoded_exactly() -> None:
    data = _rich_data(3, 40)
    fitted = build_design(_rich_formula(), data)
    again = _roundtrip(fitted.encoder).transform(data)
    np.testing.assert_array_equal(again.X, fitted.X)
    np.testing.assert_array_equal(again.y, fitted.y)
    assert [b.levels for b in again.random] == [b.levels for b in fitted.random]
    for a, b in zip(again.random, fitted.random, strict=True):
        np.testing.assert_array_equal(a.codes, b.codes)


def test_scale_and_poly_use_the_fitted_coefficients() -> None:
    x = np.arange(1.0, 11.0)
    data = pd.DataFrame({"y": x**2, "x": x})
    new = pd.DataFrame({"x": [11.0, 5.5]})
    scaled = build_design(formula("y", term(call("scale", c("x")))), data)
    encoded = _roundtrip(scaled.encoder).transform(new)
    assert encoded.y is None
    # Centre 5.5 and sd of 1:10 from the fit, not from the new rows (1e-14: rounding only).
    np.testing.assert_allclose(encoded.X[:, 1], [5.5 / np.std(x, ddof=1), 0.0], atol=1e-14)
    poly = build_design(formula("y", term(call("poly", c("x"), num(2)))), data)
    encoded = _roundtrip(poly.encoder).transform(new)
    # R's predict.poly at 11: linear (11 - 5.5)/sqrt(82.5); quadratic
    # ((11 - 5.5)^2 - 8.25)/sqrt(528) = 22/sqrt(528). Exact up to rounding (1e-14).
    np.testing.assert_allclose(encoded.X[:, 1], [5.5 / np.sqrt(82.5), 0.0], atol=1e-14)
    np.testing.assert_allclose(encoded.X[:, 2], [22 / np.sqrt(528), -8.25 / np.sqrt(528)],
                               atol=1e-14)


def test_missing_levels_keep_all_columns_and_unseen_groups_get_minus_one() -> None:
    fitted = build_design(_rich_formula(), _rich_data(4, 60))
    new = pd.DataFrame({"y": [2.0, 3.0], "x": [1.0, 2.0], "f": ["lo", "lo"], "k": [1, 1],
                        "g": ["s2", "zz"]})
    design = _roundtrip(fitted.encoder).transform(new)
    assert design.X.shape == (2, len(fitted.fixed_names))
    assert design.fixed_names == fitted.fixed_names
    assert design.random[0].codes.tolist() == [1, -1]
    # k given as text in a JSON request still matches the numeric level 1.
    as_text = _roundtrip(fitted.encoder).transform(new.assign(k=["1", "1"]))
    np.testing.assert_array_equal(as_text.X, design.X)
    with pytest.raises(PredictionError, match=r"group 'g' has levels not seen when fitting: zz"):
        fitted.encoder.transform(new, new_levels="error")


def test_missing_group_value_is_population_level_or_an_error() -> None:
    fitted = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"),
                          load("sleepstudy.csv"))
    rows = pd.DataFrame({"Days": [1.0, 2.0], "Subject": [308, None]})
    assert fitted.encoder.transform(rows).random[0].codes.tolist() == [0, -1]
    with pytest.raises(PredictionError, match="not seen"):
        fitted.encoder.transform(rows, new_levels="error")


def test_prediction_errors_name_what_is_wrong() -> None:
    fitted = build_design(_rich_formula(), _rich_data(5, 60))
    encoder = _roundtrip(fitted.encoder)
    with pytest.raises(PredictionError, match="not present in the new data: x, f, k, g"):
        encoder.transform(pd.DataFrame({"y": [1.0]}))
    bad_level = pd.DataFrame({"x": [1.0], "f": ["huge"], "k": [7], "g": ["s1"]})
    with pytest.raises(PredictionError, match=r"column 'f' has levels not seen.*: huge"):
        encoder.transform(bad_level)
    missing = pd.DataFrame({"x": [1.0, np.nan, 2.0], "f": ["lo", "mid", None], "k": [1, 2, 3],
                            "g": ["s1", "s1", "s2"]})
    with pytest.raises(PredictionError, match=r"2 row\(s\) have missing values in column\(s\) "
                                              r"x, f: rows 2, 3"):  # R's row numbers
        encoder.transform(missing)
    with pytest.raises(PredictionError, match="unknown format"):
        DesignEncoder.from_json({"format": "pickle"})


def test_aliased_columns_are_remembered() -> None:
    data = pd.DataFrame({"y": np.arange(6.0), "z": [0.0, 1, 0, 1, 0, 1],
                         "x": ["A", "B", "A", "B", "A", "B"]})
    fitted = build_design(formula("y", term("z"), term("x")), data)
    again = _roundtrip(fitted.encoder).transform(data.iloc[:2])
    assert again.fixed_names == ("(Intercept)", "z")
    assert again.dropped_aliased == ("xB",)
    np.testing.assert_array_equal(again.X, fitted.X[:2])


def test_a_group_column_also_used_as_a_term_must_be_complete() -> None:
    fitted = build_design(parse_formula("Mood ~ Exercise + State + (1 | State)"),
                          load("mood.csv"))
    rows = pd.DataFrame({"Exercise": [1.0, 2.0], "State": ["A", None]})
    with pytest.raises(PredictionError, match=r"missing values in column\(s\) State: row 2$"):
        fitted.encoder.transform(rows)
    with pytest.raises(PredictionError, match="State"):
        fitted.encoder.transform(rows, random=False)


def test_function_domain_errors_in_new_data_are_prediction_errors() -> None:
    data = pd.DataFrame({"y": [1.0, 2, 3, 4], "x": [1.0, 2, 3, 5]})
    fitted = build_design(formula("y", term(call("log", c("x")))), data)
    with pytest.raises(PredictionError, match=r"log\(x\) gives NaN.*column 'x'"):
        fitted.encoder.transform(pd.DataFrame({"x": [1.0, -1.0]}))


def test_no_rows_gives_empty_matrices() -> None:
    fitted = build_design(parse_formula("angle ~ recipe * temp + (1 | recipe:replicate)"),
                          load("cake.csv"))
    empty = pd.DataFrame({"recipe": pd.Series([], dtype=object),
                          "temp": pd.Series([], dtype=float),
                          "replicate": pd.Series([], dtype=float)})
    design = fitted.encoder.transform(empty)
    assert design.X.shape == (0, 6) and design.random[0].covariates.shape == (0, 1)
