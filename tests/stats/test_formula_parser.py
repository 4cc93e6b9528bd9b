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
    # ... including names met in removed parts (R 4.2)
    ("y ~ x - b + a + b:a", ["x", "a", "b:a"]),
    ("y ~ x - log(b) + a + a:log(b)", ["x", "a", "log(b):a"]),
    ("y ~ ((a)^2 - (c)^3):(x*c)", ["a:x", "a:c", "a:c:x"]),
    # R quirk: crossing or nesting an empty left side gives nothing
    ("y ~ (a - a)*b", []),
    ("y ~ (a - a)/b", []),
    ("y ~ b*(a - a)", ["b"]),
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
    ("y ~ I(x * 2L)", "I(x * 2)"),
    ("y ~ I(x * 123456789012)", "I(x * 123456789012)"),
    ("y ~ I(x * 1e-20)", "I(x * 1e-20)"),
    ("y ~ I(1.5e3 * x)", "I(1500 * x)"),
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


def test_labels_keep_written_parentheses() -> None:
    assert labels(parse_formula("y ~ I(-x^2) + I((-x)^2) + I(2^x^2)")) == [
        "I(-x^2)", "I((-x)^2)", "I(2^x^2)"]


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
    # lme4 deparses a lone group symbol without backticks, an interaction with them
    ("y ~ (1 | `my group`)", [(True, [], ("my group",), "my group")]),
    ("y ~ (1 | a:`my group`)", [(True, [], ("a", "my group"), "a:`my group`")]),
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
    # the reference fits (each names its case); other expected files hold R's answers to
    # narrower questions
    return [case for case in cases if "formula" in case and "case" in case]


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


# -- agreement with R ------------------------------------------------------------------------

# Randomly generated formulas with the answers of R 4.2.2 (terms(): intercept, term.labels)
# and lme4 1.1-31 (findbars after expandDoubleVerts: intercept, term.labels, deparsed group)
# on the machine that produced tests/data/expected. Exact string equality: labels are names.
R_CASES: list[tuple[str, bool, list[str], list[tuple[bool, list[str], str]]]] = [
    ('y ~ 1 +0 + I(x^-1) + C(a)',
     False, ['I(x^-1)', 'C(a)'],
     []),
    ('y ~ 0 - I(x^2.0)',
     False, [],
     []),
    ('y ~ `a.b` + (`my col` | g:h)',
     True, ['a.b'],
     [(True, ['`my col`'], 'g:h')]),
    ('y ~ log10(x)/I(a/(b*c)) - factor(a):I(a/(b*c)) + I(1.5e3 * x)',
     True, ['log10(x)', 'I(1500 * x)', 'log10(x):I(a/(b * c))'],
     []),
    ('y ~ log1p(x) + I(2^x^2):I(x*2L) - Sepal.Length + b + -1',
     False, ['log1p(x)', 'b', 'I(2^x^2):I(x * 2)'],
     []),
    ('y ~ I(x*100000)/I(-x^2) + I(-x)',
     True, ['I(x * 1e+05)', 'I(-x)', 'I(x * 1e+05):I(-x^2)'],
     []),
    ('y ~ Sepal.Length + I(x*1e5) + -1 - +0',
     True, ['Sepal.Length', 'I(x * 1e+05)'],
     []),
    ('y ~ I(x * 123456789012)/I(x - -1) - I(x*0.50) + (`my col` | h/g)',
     True, ['I(x * 123456789012)', 'I(x * 123456789012):I(x - -1)'],
     [(True, ['`my col`'], 'g:h'), (True, ['`my col`'], 'h')]),
    ('y ~ log( x )',
     True, ['log(x)'],
     []),
    ('y ~ (a + `x`)^3 + `my col` + log1p(x)',
     True, ['a', 'x', '`my col`', 'log1p(x)', 'a:x'],
     []),
    ('y ~ C(a) - (I(x + (a*b)) + b + a)^2 - 1',
     False, ['C(a)'],
     []),
    ('y ~ (poly(x, degree = 2) + I(x*100000))^2 + 0 - (x + I(-x^2))^2 - exp(x) + (-1 + x || h/g)',
     False, ['poly(x, degree = 2)', 'I(x * 1e+05)', 'poly(x, degree = 2):I(x * 1e+05)'],
     [(False, ['x'], 'g:h'), (False, ['x'], 'h')]),
    ('y ~ 0 - sqrt(abs(x)) + poly(x, 3) + 1 - I(1.5e3 * x) + (x | h/g)',
     True, ['poly(x, 3)'],
     [(True, ['x'], 'g:h'), (True, ['x'], 'h')]),
    ('y ~ (I(x^2.0) + `my col` + log1p(x))^2 + (1 | g/h)',
     True, ['I(x^2)', '`my col`', 'log1p(x)', 'I(x^2):`my col`', 'I(x^2):log1p(x)',
            '`my col`:log1p(x)'],
     [(True, [], 'h:g'), (True, [], 'g')]),
    ('y ~ exp(x) + I(x^2.0) - 1 + x + (x + 0 || h/g)',
     False, ['exp(x)', 'I(x^2)', 'x'],
     [(False, ['x'], 'g:h'), (False, ['x'], 'h')]),
    ('y ~ I(x*100000)/exp(x)',
     True, ['I(x * 1e+05)', 'I(x * 1e+05):exp(x)'],
     []),
    ('y ~ Sepal.Length - I(x*100000) - I(x/0.0001) + sqrt(abs(x)):I(x*1e5)',
     True, ['Sepal.Length', 'I(x * 1e+05):sqrt(abs(x))'],
     []),
    ('y ~ (C(a))^2 + poly(x, 3):I(x^2.0) + I(x*0.50) + C(a):I(x*0.50)',
     True, ['C(a)', 'I(x * 0.5)', 'poly(x, 3):I(x^2)', 'C(a):I(x * 0.5)'],
     []),
    ('y ~ I(x^-1) - I(x^-1) - -0',
     False, [],
     []),
    ('y ~ I(x*0.50) + Sepal.Length + I((-x)^2) + I(x - -1) + I(x * 123456789012)/I((-x)^2)',
     True, ['I(x * 0.5)', 'Sepal.Length', 'I((-x)^2)', 'I(x - -1)', 'I(x * 123456789012)',
            'I((-x)^2):I(x * 123456789012)'],
     []),
    ('y ~ factor(a)*x',
     True, ['factor(a)', 'x', 'factor(a):x'],
     []),
    ('y ~ (I(x + (a*b)) + I(x*2L))^2 - 0 + `my col` + scale(x) + I(x*1e5)/Sepal.Length',
     True, ['I(x + (a * b))', 'I(x * 2)', '`my col`', 'scale(x)', 'I(x * 1e+05)',
            'I(x + (a * b)):I(x * 2)', 'I(x * 1e+05):Sepal.Length'],
     []),
    ('y ~ I(x * 123456789012) - C(a) + I(x*100000) + (1 + x + I(x^2) || g)',
     True, ['I(x * 123456789012)', 'I(x * 1e+05)'],
     [(True, [], 'g'), (False, ['x'], 'g'), (False, ['I(x^2)'], 'g')]),
    ('y ~ +0 + `a.b` + factor(a)',
     False, ['a.b', 'factor(a)'],
     []),
    ('y ~ poly(x, 3)/log2(x) - 0 + +1 - I((-x)^2)',
     True, ['poly(x, 3)', 'poly(x, 3):log2(x)'],
     []),
    ('y ~ log10(x) - 0 - I(x*2L) + I(x^2.0)',
     True, ['log10(x)', 'I(x^2)'],
     []),
    ('y ~ I((-x)^2) + I(x + (a*b)):sqrt(abs(x))',
     True, ['I((-x)^2)', 'I(x + (a * b)):sqrt(abs(x))'],
     []),
    ('y ~ exp(x) - I(x*100000)',
     True, ['exp(x)'],
     []),
    ('y ~ log10(x) - I(x * 123456789012)',
     True, ['log10(x)'],
     []),
    ('y ~ I(x/0.0001):I(x^2.0)',
     True, ['I(x/1e-04):I(x^2)'],
     []),
    ('y ~ (b + log(x))^3 - log10(x) - sqrt(abs(x)) + log2(x)',
     True, ['b', 'log(x)', 'log2(x)', 'b:log(x)'],
     []),
    ('y ~ 1 +1',
     True, [],
     []),
    ('y ~ log( x ) + 1 + x*log(x) + log( x )',
     True, ['log(x)', 'x', 'log(x):x'],
     []),
    ('y ~ scale(x) + `a.b` + (I(a*b/c) + poly(x, 3) + `a.b`)^2 + log2(x)',
     True, ['scale(x)', 'a.b', 'I(a * b/c)', 'poly(x, 3)', 'log2(x)', 'I(a * b/c):poly(x, 3)',
            'a.b:I(a * b/c)', 'a.b:poly(x, 3)'],
     []),
    ('y ~ I(x/0.0001) + I(x/0.0001):I(x*2L)',
     True, ['I(x/1e-04)', 'I(x/1e-04):I(x * 2)'],
     []),
    ('y ~ 1 +0 - log2(x) - I(x*0.50) - b - 1',
     False, [],
     []),
    ('y ~ I(x*0.50) + `my col`',
     True, ['I(x * 0.5)', '`my col`'],
     []),
    ('y ~ scale(x) + factor(a):x - log(x):log2(x) + b',
     True, ['scale(x)', 'b', 'factor(a):x'],
     []),
    ('y ~ `a.b` + -0 + I(2^x^2) + I(x*2L)',
     True, ['a.b', 'I(2^x^2)', 'I(x * 2)'],
     []),
    ('y ~ 1 -0 + I(2^x^2)/scale(x)',
     True, ['I(2^x^2)', 'I(2^x^2):scale(x)'],
     []),
    ('y ~ (I((a + 1)/2):log(x):I((a + 1)/2)/(I(x^2)) + a)',
     True, ['a', 'I((a + 1)/2):log(x)', 'I((a + 1)/2):log(x):I(x^2)'],
     []),
    ('y ~ factor(c) - `my col` + (I((a + 1)/2) + b + log(x)) + c*log(x) + (log(x) | g/h)',
     True, ['factor(c)', 'I((a + 1)/2)', 'b', 'log(x)', 'c', 'log(x):c'],
     [(True, ['log(x)'], 'h:g'), (True, ['log(x)'], 'g')]),
    ('y ~ ((I((a + 1)/2)) + factor(c)/log(x)/scale(b) + (`my col` + b:poly(x, 2) + b))',
     True, ['I((a + 1)/2)', 'factor(c)', '`my col`', 'b', 'factor(c):log(x)', 'b:poly(x, 2)',
            'factor(c):log(x):scale(b)'],
     []),
    ('y ~ ((I(x^2)*(factor(c):factor(c))^2)) + (a*b | g:h)',
     True, ['I(x^2)', 'factor(c)', 'I(x^2):factor(c)'],
     [(True, ['a', 'b', 'a:b'], 'g:h')]),
    ('y ~ (b:(`my col`*scale(b))):log(x) + (0 + a + b || g/h) + (x - 1 | g:h)',
     True, ['b:`my col`:log(x)', 'b:scale(b):log(x)', 'b:`my col`:scale(b):log(x)'],
     [(False, ['a'], 'h:g'), (False, ['a'], 'g'), (False, ['b'], 'h:g'), (False, ['b'], 'g'),
      (False, ['x'], 'g:h')]),
    ('y ~ ((x/log(x):factor(c))/(a)^3/(factor(c)):(I(x^2))/factor(c) + poly(x, 2))',
     True, ['x', 'poly(x, 2)', 'x:log(x):factor(c)', 'x:log(x):factor(c):a',
            'x:log(x):factor(c):a:I(x^2)'],
     []),
    ('y ~ ((I((a + 1)/2)/poly(x, 2) - poly(x, 2) - (I(x^2))^3) - ((poly(x, 2)))^3)/(scale(b))^3',
     True, ['I((a + 1)/2)', 'I((a + 1)/2):poly(x, 2)', 'I((a + 1)/2):poly(x, 2):scale(b)'],
     []),
    ('y ~ b + poly(x, 2)/c + ((scale(b))) + (x*poly(x, 2))',
     True, ['b', 'poly(x, 2)', 'scale(b)', 'x', 'poly(x, 2):c', 'poly(x, 2):x'],
     []),
    ('y ~ ((poly(x, 2))^2*(I((a + 1)/2) + `my col`) + (scale(b)):`my col` + I(x^2):c):I((a + 1)/2)',
     True, ['I((a + 1)/2)', 'poly(x, 2):I((a + 1)/2)', 'I((a + 1)/2):`my col`',
            'poly(x, 2):I((a + 1)/2):`my col`', 'I((a + 1)/2):`my col`:scale(b)',
            'I((a + 1)/2):I(x^2):c'],
     []),
    ('y ~ (poly(x, 2):x)^3/b + ((x:`my col`) + b):I(x^2) - 1 + (1 + x | h)',
     False, ['poly(x, 2):x', 'b:I(x^2)', 'poly(x, 2):x:b', 'x:`my col`:I(x^2)'],
     [(True, ['x'], 'h')]),
    ('y ~ I(x^2)/(b)/((scale(b)):b:(I(x^2)/poly(x, 2)))',
     True, ['I(x^2)', 'I(x^2):b', 'I(x^2):b:scale(b)', 'I(x^2):b:scale(b):poly(x, 2)'],
     []),
    ('y ~ 0 + b:(log(x)/(I(x^2))):I(x^2) + ((I((a + 1)/2)*log(x) + a))',
     False, ['I((a + 1)/2)', 'log(x)', 'a', 'log(x):I((a + 1)/2)', 'b:log(x):I(x^2)'],
     []),
    ('y ~ x*(scale(b):(x/scale(b)) - scale(b)) + factor(c)/(I((a + 1)/2)) - 1 + (a*b | g:h)',
     False, ['x', 'factor(c)', 'x:scale(b)', 'factor(c):I((a + 1)/2)'],
     [(True, ['a', 'b', 'a:b'], 'g:h')]),
    ('y ~ 0 + (scale(b) - I((a + 1)/2):factor(c):scale(b):(scale(b)*I(x^2):I((a + 1)/2)))'
     '*factor(c)',
     False, ['scale(b)', 'factor(c)', 'scale(b):factor(c)'],
     []),
    ('y ~ 0 + c:((c)^2 + factor(c)/(factor(c) + (scale(b))^3 - log(x)/I(x^2))) + (a*b | g/h/k)',
     False, ['c', 'c:factor(c)', 'c:factor(c):scale(b)'],
     [(True, ['a', 'b', 'a:b'], 'k:(h:g)'), (True, ['a', 'b', 'a:b'], 'h:g'),
      (True, ['a', 'b', 'a:b'], 'g')]),
    ('y ~ ((I(x^2) + c)) + x - `my col` + I((a + 1)/2) + factor(c)',
     True, ['I(x^2)', 'c', 'x', 'I((a + 1)/2)', 'factor(c)'],
     []),
    ('y ~ (c):(c + ((I((a + 1)/2):I(x^2))^3)*b/poly(x, 2) - log(x))',
     True, ['c', 'c:b', 'c:I((a + 1)/2):I(x^2)', 'c:I((a + 1)/2):I(x^2):b',
            'c:I((a + 1)/2):I(x^2):b:poly(x, 2)'],
     []),
    ('y ~ (factor(c)*I(x^2)) - log(x) + (a*b | g/h:k) + (1 + x | g/h/k)',
     True, ['factor(c)', 'I(x^2)', 'factor(c):I(x^2)'],
     [(True, ['a', 'b', 'a:b'], 'h:k:g'), (True, ['a', 'b', 'a:b'], 'g'),
      (True, ['x'], 'k:(h:g)'), (True, ['x'], 'h:g'), (True, ['x'], 'g')]),
    ('y ~ (((I((a + 1)/2))^2 + `my col`)/I((a + 1)/2)) + (-1 + x || g:h)',
     True, ['I((a + 1)/2)', '`my col`', 'I((a + 1)/2):`my col`'],
     [(False, ['x'], 'g:h')]),
    ('y ~ factor(c):poly(x, 2) + ((x + I(x^2))*c)',
     True, ['x', 'I(x^2)', 'c', 'factor(c):poly(x, 2)', 'x:c', 'I(x^2):c'],
     []),
]


@pytest.mark.parametrize(("text", "intercept", "fixed", "random"), R_CASES)
def test_matches_r_and_lme4(text: str, intercept: bool, fixed: list[str],
                            random: list[tuple[bool, list[str], str]]) -> None:
    formula = parse_formula(text)
    assert formula.intercept is intercept
    assert labels(formula) == fixed
    assert [(r.intercept, [t.label for t in r.terms], r.group_label)
            for r in formula.random] == random


# -- errors carry the position ---------------------------------------------------------------

def test_error_points_at_the_token() -> None:
    with pytest.raises(FormulaError) as info:
        parse_formula("y ~ x + system(z)")
    error = info.value
    assert error.position == 8
    assert error.token == "system"
    assert "unknown function 'system'; allowed:" in error.message
    assert str(error).splitlines()[1:] == ["  y ~ x + system(z)", "          ^"]
