"""Python's keywords are ordinary names in R, and so in formulas here; only R's reserved words
(?Reserved) need backticks.

Labels are R 4.2.2's ``attr(terms(f), "term.labels")`` (exact string equality):

    f <- y ~ class + match + from + lambda + type + def + import + None + True + and + not +
         `if` + `TRUE`:class + `function` + `..1`
    attr(terms(f), "term.labels")

The Oats fit is nlme's example model with lme4 1.1-31 (tests/data/r/oats.R wrote
tests/data/oats.csv and tests/data/expected/oats_nested.json), with the mixed-model
reference tolerances of tests/stats/test_lmm_reference.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service.stats.errors import FormulaError
from service.stats.formula import formula_columns, parse_formula
from service.stats.formula.lexer import R_RESERVED
from tests.stats.lme4_fit_check import fit_and_check

DATA = Path(__file__).resolve().parents[1] / "data"


def test_python_keywords_are_column_names_with_r_labels() -> None:
    formula = parse_formula(
        "y ~ class + match + from + lambda + type + def + import + None + True + and + not"
        " + `if` + `TRUE`:class + `function` + `..1`")
    assert [t.label for t in formula.fixed] == [
        "class", "match", "from", "lambda", "type", "def", "import", "None", "True", "and",
        "not", "`if`", "`function`", "..1", "class:`TRUE`"]
    assert formula_columns(formula)[:4] == ("y", "class", "match", "from")


@pytest.mark.parametrize("word", ["yield", "await", "async", "global", "nonlocal", "pass",
                                  "raise", "return", "try", "with", "del", "assert", "is",
                                  "or", "elif", "except", "finally", "continue", "case"])
def test_every_python_keyword_is_a_name(word: str) -> None:
    formula = parse_formula(f"{word} ~ x + {word}2 + (1 | {word}3)")
    assert formula_columns(formula) == (word, "x", f"{word}2", f"{word}3")


@pytest.mark.parametrize("word", sorted(R_RESERVED) + ["..1", "..12"])
def test_r_reserved_words_need_backticks(word: str) -> None:
    with pytest.raises(FormulaError, match="reserved word"):
        parse_formula(f"y ~ x + {word}")
    formula = parse_formula(f"y ~ x + `{word}`")
    assert formula_columns(formula) == ("y", "x", word)


def test_r_reserved_list_is_rs() -> None:
    # ?Reserved in R 4.2.2 (besides ... and ..1, ..2, which are refused separately)
    assert R_RESERVED == {
        "if", "else", "repeat", "while", "function", "for", "in", "next", "break", "TRUE",
        "FALSE", "NULL", "Inf", "NaN", "NA", "NA_integer_", "NA_real_", "NA_complex_",
        "NA_character_"}


def test_oats_yield_matches_lme4() -> None:
    _, ref = fit_and_check("oats_nested")
    assert [r.group_label for r in parse_formula(ref["formula"]).random] == ref["group_labels"]
