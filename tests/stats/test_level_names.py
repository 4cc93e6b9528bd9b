"""Numbers as R writes them: factor levels (``as.character``), term labels (``deparse``) and
the order ``factor()`` gives numeric values (numerically, not as text).

Expected values: R 4.2.2, written by tests/data/r/number_labels.R (253 doubles across
magnitudes and digit counts, as text with 17 significant digits so that each is exact).
Comparisons are exact string equality: these are names.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from service.stats.design import build_design
from service.stats.design.values import format_number
from service.stats.formula import parse_formula
from service.stats.formula.syntax import r_number
from service.stats.lmlist import split_by_group

REF: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "expected" / "number_labels.json")
    .read_text())


def test_as_character_of_every_value() -> None:
    values = [float(v) for v in REF["values"]]
    assert [format_number(v) for v in values] == REF["as_character"]


def test_deparse_of_every_value() -> None:
    values = [float(v) for v in REF["values"]]
    assert [r_number(v) for v in values] == REF["deparse"]


def test_numbers_in_term_labels_are_deparsed() -> None:
    formula = parse_formula("y ~ I(x * 100000) + I(x / 0.0001) + I(x + 100000.5)")
    assert [t.label for t in formula.fixed] == [
        "I(x * 1e+05)", "I(x/1e-04)", "I(x + 100000.5)"]


def _factor_frame() -> pd.DataFrame:
    values = [float(v) for v in REF["factor_input"]]
    rng = np.random.default_rng(3)
    return pd.DataFrame({"y": rng.normal(size=len(values)), "g": values})


def test_numeric_group_levels_are_rs_factor_levels() -> None:
    frame = pd.concat([_factor_frame()] * 3, ignore_index=True)
    frame["y"] = np.random.default_rng(5).normal(size=len(frame))
    design = build_design(parse_formula("y ~ 1 + (1 | g)"), frame)
    block = design.random[0]
    assert list(block.levels) == REF["factor_levels"]
    # R's as.integer(factor(x)): 0.1 + 0.2 and 0.3 share the level "0.3"
    assert (block.codes[: len(REF["factor_codes"])] + 1).tolist() == REF["factor_codes"]


def test_per_group_levels_are_rs_factor_levels() -> None:
    groups, _ = split_by_group(parse_formula("y ~ 1 | g"), _factor_frame())
    assert [g.level for g in groups] == REF["factor_levels"]


def test_factor_of_a_numeric_column_names_columns_as_r() -> None:
    frame = pd.DataFrame(REF["model_frame"])
    formula = parse_formula("y ~ factor(service) + factor(dose)")
    assert [t.label for t in formula.fixed] == REF["model_term_labels"]
    design = build_design(formula, frame)
    assert list(design.fixed_names) == REF["model_columns"]


@pytest.mark.parametrize("written", [100000, 100000.0, "1e5", "100000", "1e+05"])
def test_new_data_finds_the_level_however_the_number_is_written(written: object) -> None:
    frame = pd.DataFrame(REF["model_frame"])
    design = build_design(parse_formula("y ~ factor(dose)"), frame)
    new = pd.DataFrame({"dose": pd.Series([written], dtype=object)})
    X = design.encoder.transform(new, random=False).X
    assert X.tolist() == [[1.0, 0.0, 0.0, 1.0]]


def test_integer_columns_are_written_in_full_as_r_reads_them() -> None:
    # read.csv: whole numbers are an integer vector (as.character in full), the rest doubles
    frame = pd.read_csv(io.StringIO(REF["csv"]))
    assert [str(frame[c].dtype) for c in frame.columns] == ["float64", "int64", "float64"]
    design = build_design(parse_formula("y ~ factor(count) + factor(dose)"), frame)
    assert list(design.fixed_names) == REF["csv_columns"]


@pytest.mark.parametrize("written", [100000, 100000.0, "1e5", "100000"])
def test_an_integer_level_is_found_by_value(written: object) -> None:
    frame = pd.read_csv(io.StringIO(REF["csv"]))
    design = build_design(parse_formula("y ~ factor(count)"), frame)
    new = pd.DataFrame({"count": pd.Series([written], dtype=object)})
    assert design.encoder.transform(new, random=False).X.tolist() == [[1.0, 1.0, 0.0]]


def test_a_numeric_group_level_is_found_by_value() -> None:
    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"y": rng.normal(size=12), "g": [100000, 200000, 300000] * 4})
    design = build_design(parse_formula("y ~ 1 + (1 | g)"), frame)
    assert design.random[0].levels == ("100000", "200000", "300000")
    new = pd.DataFrame({"g": [2e5, 1e5, 4e5]})  # doubles: labelled 2e+05, 1e+05, 4e+05
    codes = design.encoder.transform(new).random[0].codes
    assert codes.tolist() == [1, 0, -1]
