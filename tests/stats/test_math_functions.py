"""R's mathematical functions and the constant ``pi`` in formulas, against R 4.2.2 and lme4
1.1-31 (tests/data/r/math_functions.R wrote the expected files).

- term labels and model-matrix column names: exact (R's deparse of the arithmetic inside
  the calls: ``sin(2 * pi * Time)``, ``cos(Time/24 * 2 * pi)``, ``trunc(-x * 2.5)``);
- model-matrix values: 1e-12 relative (the same libm functions, 1e-300 absolute for zeros);
- ``round(x)``: exact, half to even as R's default ``digits = 0``;
- nlme's Ovary model: the mixed-model reference tolerances of test_lmm_reference.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from service.stats.design import build_design
from service.stats.design.encoder import DesignEncoder
from service.stats.errors import DesignError, FormulaError
from service.stats.formula import Number, formula_columns, parse_formula
from tests.stats.lme4_fit_check import fit_and_check

DATA = Path(__file__).resolve().parents[1] / "data"


def expected(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((DATA / "expected" / f"{name}.json").read_text())
    return result


def test_term_labels_columns_and_values_match_model_matrix() -> None:
    ref = expected("math_functions")
    formula = parse_formula(ref["model"])
    assert [t.label for t in formula.fixed] == ref["term_labels"]
    design = build_design(formula, pd.DataFrame(ref["data"]))
    assert list(design.fixed_names) == ref["columns"]
    want = np.column_stack([np.asarray(col, dtype=float) for col in ref["matrix"]])
    np.testing.assert_allclose(design.X, want, rtol=1e-12, atol=1e-300)


def test_round_is_half_to_even_as_r() -> None:
    ref = expected("math_functions")["round"]
    frame = pd.DataFrame({"y": np.arange(len(ref["x"]), dtype=float), "x": ref["x"]})
    design = build_design(parse_formula("y ~ 0 + round(x)"), frame)
    assert design.X[:, 0].tolist() == ref["value"]


def test_pi_is_the_constant_and_not_a_column() -> None:
    formula = parse_formula("y ~ sin(2*pi*Time) + I(x/pi)")
    assert formula_columns(formula) == ("y", "Time", "x")
    constant = formula.fixed[0].factors[0].args[0].left.right  # type: ignore[union-attr]
    assert constant == Number(np.pi, "pi")


def test_a_column_called_pi_shadows_the_constant_as_in_model_frame() -> None:
    # R: lm(y ~ I(2 * pi), data.frame(y = ..., pi = ...)) reads the column
    frame = pd.DataFrame({"y": [1.0, 2.0, 4.0, 3.0], "pi": [1.0, 2.0, 3.0, 5.0]})
    design = build_design(parse_formula("y ~ I(2 * pi)"), frame)
    assert design.fixed_names == ("(Intercept)", "I(2 * pi)")
    assert design.X[:, 1].tolist() == [2.0, 4.0, 6.0, 10.0]
    encoder = DesignEncoder.from_json(json.loads(json.dumps(design.encoder.to_json())))
    assert encoder.columns_used() == ["pi"]


def test_pi_alone_is_not_a_term() -> None:
    # R: lm(y ~ pi) fails (variable lengths differ); here pi as a term is a column
    frame = pd.DataFrame({"y": [1.0, 2.0, 4.0], "x": [1.0, 2.0, 3.0]})
    with pytest.raises(DesignError, match="not present in the dataset: pi"):
        build_design(parse_formula("y ~ x + pi"), frame)


@pytest.mark.parametrize(("function", "values", "hint"), [
    ("asin", [0.5, 1.5, -0.2], "values from -1 to 1"),
    ("acos", [-2.0, 0.0, 0.3], "values from -1 to 1"),
    ("cosh", [1000.0, 0.0, 1.0], "too large"),
])
def test_out_of_domain_values_are_a_design_error(function: str, values: list[float],
                                                 hint: str) -> None:
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0], "x": values})
    with pytest.raises(DesignError, match=hint):
        build_design(parse_formula(f"y ~ {function}(x)"), frame)


def test_round_takes_one_argument() -> None:
    with pytest.raises(FormulaError, match="round\\(x, digits\\) is not supported"):
        parse_formula("y ~ round(x, 2)")


def test_functions_nest_and_work_in_the_response() -> None:
    frame = pd.DataFrame({"y": [0.1, 0.4, 0.2, 0.9], "x": [1.0, 2.0, 3.0, 4.0]})
    design = build_design(parse_formula("asin(sqrt(y)) ~ floor(log(x)*2)"), frame)
    assert design.response_name == "asin(sqrt(y))"
    assert design.fixed_names == ("(Intercept)", "floor(log(x) * 2)")
    np.testing.assert_allclose(design.y, np.arcsin(np.sqrt(frame["y"])), rtol=1e-15)


def test_ovary_matches_lme4() -> None:
    result, _ = fit_and_check("ovary_trig")
    assert [vc.group for vc in result.random_effects] == ["Mare"]
