"""The formula parser: R's term expansion and labels, lme4's random terms, lmList syntax."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.stats.formula import (
    BinOp,
    Call,
    Column,
    Formula,
    FormulaError,
    Negate,
    Number,
    Term,
    formula_columns,
    parse_formula,
)

EXPECTED = Path(__file__).resolve().parents[1] / "data" / "expected"


def labels(formula: Formula) -> list[str]:
    return [term.label for term in formula.fixed]


def bars(formula: Formula) -> list[tuple[bool, list[str], tuple[str, ...], str]]:
    return [(r.intercept, [t.label for t in r.terms], r.group, r.group_label)
            for r in formula.random]


# -- fixed-effects term algebra (R's terms.formula) ------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("y ~ x", ["x"]),
    ("y ~ a + b", ["a", "b"]),
    ("y ~ a:b", ["a:b"]),
    ("y ~ a*b", ["a", "b", "a:b"]),
    ("y ~ a*b*c", ["a", "b", "c", "a:b", "a:c", "b:c", "a:b:c"]),
    ("y ~ (a + b + c)^2", ["a", "b", "c", "a:b", "a:c", "b:c"]),
    ("y ~ (a + b + c)^3", ["a", "b", "c", "a:b", "a:c", "b:c", "a:b:c"]),
    ("y ~ (a + b)^10", ["a", "b", "a:b"]),  # powers beyond the variable count change nothing
    ("y ~ x^2", ["x"]),  # R: x crossed with itself is x
    ("y ~ a/b", ["a", "a:b"]),
    ("y ~ a/(b + c)", ["a", "a:b", "a:c"]),
    ("y ~ (a + b)/c", ["a", "b", "a:b:c"]),
    ("y ~ a/b/c", ["a", "a:b", "a:b:c"]),
    ("y ~ (a + b):c", ["a:c", "b:c"]),
    ("y ~ a*b - a", ["b", "a:b"]),
    ("y ~ a*b - a:b", ["a", "b"]),
    ("y ~ (a + b + c)^2 - a:b", ["a", "b", "c", "a:c", "b:c"]),
    ("y ~ x - x", []),
    ("y ~ a + b + a", ["a", "b"]),
    ("y ~ a:b + b:a", ["a:b"]),
    ("y ~ a:b + a", ["a", "a:b"]),  # order first, then appearance
    ("y ~ x + z:w + v", ["x", "v", "z:w"]),
    # R labels factors in order of the variables' first appearance, not as written.
    ("y ~ b + a + a:b", ["b", "a", "b:a"]),
    # ... where names only in removed parts are registered last (R's ExtractVars) ...
    ("y ~ x - b + a + b:a", ["x", "a", "a:b"]),
    # ... but calls are registered wherever they are
    ("y ~ x - log(b) + a + a:log(b)", ["x", "a", "log(b):a"]),
    ("y ~ a + b:a", ["a", "a:b"]),
    ("y ~ ((x))", ["x"]),
    ("y ~ +x", ["x"]),
])
def test_fixed_term_expansion(text: str, expected: list[str]) -> None:
    assert labels(parse_formula(text)) == expected


@pytest.mark.parametrize(("text", "intercept", "expected"), [
    ("y ~ x", True, ["x"]),
    ("y ~ 1 + x", True, ["x"]),
    ("y ~ 0 + x", False, ["x"]),
    ("y ~ x + 0", False, ["x"]),
    ("y ~ x - 1", False, ["x"]),
    ("y ~ -1 + x", False, ["x"]),
    ("y ~ 1", True, []),
    ("y ~ 0", False, []),
    ("y ~ 0 + x + 1", True, ["x"]),  # R: the last 0/1 wins
    ("y ~ x - 0", True, ["x"]),  # R: removing 'no intercept' keeps it
    ("y ~ x - (1 + x)", False, []),
])
def test_intercept(text: str, intercept: bool, expected: list[str]) -> None:
    formula = parse_formula(text)
    assert formula.intercept is intercept
    assert labels(formula) == expected


def test_term_factors_and_order() -> None:
    formula = parse_formula("y ~ a*b")
    assert formula.fixed[2] == Term((Column("a"), Column("b")), "a:b")
    assert [term.order for term in formula.fixed] == [1, 1, 2]
    assert not any(term.is_intercept for term in formula.fixed)


def test_cake_formula_from_the_issue() -> None:
    formula = parse_formula("angle ~ recipe * temp + (1 | recipe:replicate)")
    assert formula.response == Column("angle")
    assert labels(formula) == ["recipe", "temp", "recipe:temp"]
    assert bars(formula) == [(True, [], ("recipe", "replicate"), "recipe:replicate")]
    assert formula.kind == "lmm"
    assert formula.text == "angle ~ recipe * temp + (1 | recipe:replicate)"


def test_whitespace_and_newlines_do_not_matter() -> None:
    assert labels(parse_formula("y~a*b")) == labels(parse_formula("y ~\n  a *\tb"))


# -- functions and labels --------------------------------------------------------------------

@pytest.mark.parametrize(("text", "label"), [
    ("y ~ log(x)", "log(x)"),
    ("y ~ log2(x)", "log2(x)"),
    ("y ~ log10( x )", "log10(x)"),
    ("y ~ log1p(x)", "log1p(x)"),
    ("y ~ exp(x)", "exp(x)"),
    ("y ~ sqrt(x)", "sqrt(x)"),
    ("y ~ abs(x)", "abs(x)"),
    ("y ~ scale(x)", "scale(x)"),
    ("y ~ factor(cyl)", "factor(cyl)"),
    ("y ~ C(cyl)", "C(cyl)"),
    ("y ~ poly(x,2)", "poly(x, 2)"),
    ("y ~ poly(x, degree = 3)", "poly(x, degree = 3)"),
    # R's deparse: spaces around + - * but not / ^
    ("y ~ I(x^2)", "I(x^2)"),
    ("y ~ I(x ^ 2)", "I(x^2)"),
    ("y ~ I(2*x)", "I(2 * x)"),
    ("y ~ I(x/2)", "I(x/2)"),
    ("y ~ I(x+1)", "I(x + 1)"),
    ("y ~ I(x-1)", "I(x - 1)"),
    ("y ~ I(-x)", "I(-x)"),
    ("y ~ I(x^-1)", "I(x^-1)"),
    ("y ~ I((x + 1)^2)", "I((x + 1)^2)"),
    ("y ~ log(x + 1)", "log(x + 1)"),
    ("y ~ I(log(x)^2)", "I(log(x)^2)"),
    # numbers as R prints them (15 significant digits, the shorter of fixed/scientific)
    ("y ~ I(x^2.0)", "I(x^2)"),
    ("y ~ I(x * 0.50)", "I(x * 0.5)"),
    ("y ~ I(x * 1e5)", "I(x * 1e+05)"),
    ("y ~ I(x * 1000)", "I(x * 1000)"),
    ("y ~ I(x * 0.0001)", "I(x * 1e-04)"),
    ("y ~ I(x * 0.001)", "I(x * 0.001)"),
    ("y ~ I(x * .5)", "I(x * 0.5)"),
    # backticks stay only where R needs them
    ("y ~ `my col`", "`my col`"),
    ("y ~ `x`", "x"),
    ("y ~ `Sepal.Length`", "Sepal.Length"),
    ("y ~ `2x`", "`2x`"),
    ("y ~ `class`", "class"),
    ("y ~ log(`my col`)", "log(`my col`)"),
    ("y ~ Sepal.Length", "Sepal.Length"),
    ("y ~ x_1.b", "x_1.b"),
    ("y ~ Größe", "Größe"),
])
def test_function_and_name_labels(text: str, label: str) -> None:
    assert labels(parse_formula(text)) == [label]


def test_factor_labels_keep_what_r_prints() -> None:
    formula = parse_formula("y ~ poly(x, degree = 2):`my g` + I((x))")
    assert [t.factor_labels for t in formula.fixed] == [("I((x))",),
                                                        ("poly(x, degree = 2)", "`my g`")]
    # they take no part in equality, so hand-built terms still compare equal
    assert formula.fixed[0] == Term((Call("I", (Column("x"),)),), "I((x))")


def test_call_trees() -> None:
    formula = parse_formula("log(y) ~ I(x^2) + poly(x, 2) + I(-x / 2) + factor(cyl)")
    assert formula.response == Call("log", (Column("y"),))
    factors = [term.factors[0] for term in formula.fixed]
    assert factors[0] == Call("I", (BinOp("^", Column("x"), Number(2.0, "2")),))
    assert factors[1] == Call("poly", (Column("x"), Number(2.0, "2")))
    assert factors[2] == Call("I", (BinOp("/", Negate(Column("x")), Number(2.0, "2")),))
    assert factors[3] == Call("factor", (Column("cyl"),))


def test_arithmetic_precedence_inside_I() -> None:
    # R: unary minus binds looser than ^ and tighter than * ; ^ is right-associative.
    (term,) = parse_formula("y ~ I(-x^2 * a + b^c^d)").fixed
    x2 = Negate(BinOp("^", Column("x"), Number(2.0, "2")))
    power = BinOp("^", Column("b"), BinOp("^", Column("c"), Column("d")))
    assert term.factors == (Call("I", (BinOp("+", BinOp("*", x2, Column("a")), power),)),)


def test_same_call_written_differently_is_one_variable() -> None:
    assert labels(parse_formula("y ~ log(x) + log( x ) + log(x):z")) == ["log(x)", "log(x):z"]


def test_backticked_column_keeps_its_name() -> None:
    formula = parse_formula("`my y` ~ `my col` + `a.b c`")
    assert formula.response == Column("my y")
    assert formula.fixed[0].factors == (Column("my col"),)
    assert formula_columns(formula) == ("my y", "my col", "a.b c")


def test_response_expression() -> None:
    assert parse_formula("I(y / 10) ~ x").response == Call(
        "I", (BinOp("/", Column("y"), Number(10.0, "10")),))
    assert parse_formula("log(y) ~ y2").response == Call("log", (Column("y"),))


# -- random-effects terms (lme4) -------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("y ~ (1 | g)", [(True, [], ("g",), "g")]),
    ("y ~ (1 + x | g)", [(True, ["x"], ("g",), "g")]),
    ("y ~ (x | g)", [(True, ["x"], ("g",), "g")]),
    ("y ~ (0 + x | g)", [(False, ["x"], ("g",), "g")]),
    ("y ~ (x - 1 | g)", [(False, ["x"], ("g",), "g")]),
    ("y ~ (a*b | g)", [(True, ["a", "b", "a:b"], ("g",), "g")]),
    ("y ~ (x || g)", [(True, [], ("g",), "g"), (False, ["x"], ("g",), "g")]),
    ("y ~ (x + z || g)", [(True, [], ("g",), "g"), (False, ["x"], ("g",), "g"),
                          (False, ["z"], ("g",), "g")]),
    ("y ~ (0 + x || g)", [(False, ["x"], ("g",), "g")]),
    # lme4's expandSlash: innermost first; R's deparse parenthesises c:(b:a)
    ("y ~ (1 | a/b)", [(True, [], ("b", "a"), "b:a"), (True, [], ("a",), "a")]),
    ("y ~ (1 | a/b/c)", [(True, [], ("c", "b", "a"), "c:(b:a)"),
                         (True, [], ("b", "a"), "b:a"), (True, [], ("a",), "a")]),
    ("y ~ (1 | a:b/c)", [(True, [], ("c", "a", "b"), "c:(a:b)"),
                         (True, [], ("a", "b"), "a:b")]),
    ("y ~ (1 | a/b:c)", [(True, [], ("b", "c", "a"), "b:c:a"), (True, [], ("a",), "a")]),
    ("y ~ (1 | a:b)", [(True, [], ("a", "b"), "a:b")]),
    ("y ~ (1 | g) + (1 | h)", [(True, [], ("g",), "g"), (True, [], ("h",), "h")]),
    ("y ~ (x || a/b)", [(True, [], ("b", "a"), "b:a"), (True, [], ("a",), "a"),
                        (False, ["x"], ("b", "a"), "b:a"), (False, ["x"], ("a",), "a")]),
    ("y ~ (1 | `my group`)", [(True, [], ("my group",), "`my group`")]),
    ("y ~ ((1 | g))", [(True, [], ("g",), "g")]),
    ("y ~ x + ((1 | g) + (1 | h))", [(True, [], ("g",), "g"), (True, [], ("h",), "h")]),
    ("y ~ (log(x) | g)", [(True, ["log(x)"], ("g",), "g")]),
])
def test_random_terms(text: str, expected: list[object]) -> None:
    assert bars(parse_formula(text)) == expected


def test_random_terms_keep_formula_order_and_leave_fixed_part() -> None:
    formula = parse_formula("y ~ (1 | h) + x + (x | g) - 1 + z")
    assert labels(formula) == ["x", "z"]
    assert formula.intercept is False
    assert [r.group_label for r in formula.random] == ["h", "g"]
    assert formula.kind == "lmm"


def test_random_only_keeps_the_fixed_intercept() -> None:
    formula = parse_formula("Yield ~ (1 | Batch)")
    assert formula.intercept is True
    assert formula.fixed == ()


def test_pastes_nested_groups_as_lme4_labels_them() -> None:
    formula = parse_formula("strength ~ 1 + (1 | batch/cask)")
    assert [r.group_label for r in formula.random] == ["cask:batch", "batch"]
    assert formula.random[0].group == ("cask", "batch")


# -- lmList ----------------------------------------------------------------------------------

def test_lmlist_syntax() -> None:
    formula = parse_formula("Mood ~ Exercise | State")
    assert formula.by_group == ("State",)
    assert labels(formula) == ["Exercise"]
    assert formula.random == ()
    assert formula.kind == "lm_by_group"


def test_lmlist_interaction_group_and_full_rhs() -> None:
    formula = parse_formula("y ~ a*b + x | g:h")
    assert formula.by_group == ("g", "h")
    assert labels(formula) == ["a", "b", "x", "a:b"]


def test_plain_formula_kind() -> None:
    assert parse_formula("y ~ x").kind == "lm"
    assert parse_formula("y ~ x").by_group is None


# -- formula_columns -------------------------------------------------------------------------

def test_formula_columns_in_order_of_first_appearance() -> None:
    formula = parse_formula(
        "log(y) ~ a*b + I(c^2 + a) + poly(d, 2) + (1 + e | g/h) + (0 + a || k)")
    # the nested group h:g comes first, as lme4 expands g/h
    assert formula_columns(formula) == ("y", "a", "b", "c", "d", "e", "h", "g", "k")


def test_formula_columns_of_lmlist() -> None:
    assert formula_columns(parse_formula("y ~ x | g")) == ("y", "x", "g")


# -- the reference models --------------------------------------------------------------------

def _reference_cases() -> list[dict[str, object]]:
    cases = [json.loads(path.read_text()) for path in sorted(EXPECTED.glob("*.json"))]
    return [case for case in cases if "formula" in case]


@pytest.mark.parametrize("case", _reference_cases(), ids=lambda case: str(case["case"]))
def test_every_reference_formula_parses(case: dict[str, object]) -> None:
    formula = parse_formula(str(case["formula"]))
    if "groups" in case:  # lmList
        assert formula.kind == "lm_by_group"
        return
    n_groups = case.get("n_groups")
    if isinstance(n_groups, dict):
        # lme4's grouping-factor names, e.g. 'cask:batch' for batch/cask
        assert {r.group_label for r in formula.random} == set(n_groups)
        varcorr = case["varcorr"]
        assert isinstance(varcorr, list)
        # one variance-component block per random term ('Subject', 'Subject.1' for ||)
        assert len(formula.random) == len({v["group"] for v in varcorr}) - 1
    else:
        assert formula.kind == "lm"
    fixef = case["fixef"]
    assert isinstance(fixef, dict)
    assert ("(Intercept)" in fixef) is formula.intercept


def test_reference_cases_exist() -> None:
    assert len(_reference_cases()) >= 14


# -- errors carry the position ---------------------------------------------------------------

def test_error_points_at_the_token() -> None:
    with pytest.raises(FormulaError) as info:
        parse_formula("y ~ x + system(z)")
    error = info.value
    assert error.position == 8
    assert error.token == "system"
    assert "unknown function 'system'; allowed:" in error.message
    assert str(error).splitlines()[1:] == ["  y ~ x + system(z)", "          ^"]
