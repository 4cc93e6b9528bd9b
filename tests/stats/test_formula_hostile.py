"""Hostile and malformed formulas: each is refused with a FormulaError that names the
offending token and points at it, nothing is executed, and refusal is immediate."""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.stats.formula import FormulaError, parse_formula

PWNED = Path("/tmp/mixedfit-pwned")


@pytest.fixture(autouse=True)
def _no_marker_file() -> None:
    PWNED.unlink(missing_ok=True)


def refuse(text: str) -> FormulaError:
    with pytest.raises(FormulaError) as info:
        parse_formula(text)
    return info.value


# (formula, a fragment the message must contain, the token the caret must point at)
HOSTILE: list[tuple[str, str, str]] = [
    (f"y ~ I(__import__('os').system('touch {PWNED}'))", "'__import__'", "__import__"),
    (f"y ~ I(os.system('touch {PWNED}'))", "unknown function 'os.system'", "os.system"),
    (f"y ~ system('touch {PWNED}')", "unknown function 'system'", "system"),
    (f"y ~ x + eval(\"__import__('os').system('touch {PWNED}')\")", "unknown function 'eval'",
     "eval"),
    ("y ~ exec('1')", "unknown function 'exec'", "exec"),
    ("y ~ compile('1', 'f', 'eval')", "unknown function 'compile'", "compile"),
    ("y ~ open('/etc/passwd')", "unknown function 'open'", "open"),
    ("y ~ getattr(x, 'y')", "unknown function 'getattr'", "getattr"),
    # patsy/formulaic idioms that evaluate Python
    ("y ~ np.log(x)", "unknown function 'np.log'", "np.log"),
    ("y ~ Q('x')", "unknown function 'Q'", "Q"),
    ("y ~ C(x, Treatment('a'))", "unknown function 'Treatment'", "Treatment"),
    ("y ~ C(x, 2)", "C() takes exactly one argument", "C"),
    ("y ~ bs(x, df = 3)", "unknown function 'bs'", "bs"),
    ("y ~ ｅｖａｌ(x)", "unknown function", "ｅｖａｌ"),
    ("y ~ x.__class__", "'x.__class__'", "x.__class__"),
    ("y ~ x.__class__.__bases__", "'__'", "x.__class__.__bases__"),
    ("y ~ __builtins__", "'__builtins__'", "__builtins__"),
    ("y ~ log(x).__class__", "'__'", ".__class__"),
    ("y ~ log(x).real", "attribute access '.real'", ".real"),
    ("y ~ x[0]", "subscripts", "["),
    ("y ~ x[[1]]", "subscripts", "["),
    # Python's keywords are plain names in R (as here): what follows them is refused
    ("y ~ lambda: 1", "cannot be part of an interaction", "1"),
    ("y ~ I(lambda x: x)", "unexpected name 'x'", "x"),
    ("y ~ lambda x: x", "unexpected name 'x'", "x"),
    ("y ~ I(yield from x)", "unexpected name 'from'", "from"),
    ("y ~ [x for x in y]", "subscripts and lists", "["),
    ("y ~ {x for x in y}", "braces", "{"),
    ("y ~ 'x'", "strings are not allowed", "'"),
    ('y ~ "x"', "strings are not allowed", '"'),
    ("y ~ x$y", "element access", "$"),
    ("y ~ x@y", "attribute access", "@"),
    ("y ~ x; z ~ w", "single expression", ";"),
    ("y ~ x # comment", "comments", "#"),
    ("y ~ x == 1", "comparisons", "=="),
    ("y ~ x < 1", "comparisons", "<"),
    ("y ~ x <- 1", "comparisons and assignments", "<"),
    ("y ~ !x", "logical", "!"),
    ("y ~ x & z", "logical", "&"),
    ("y ~ \\(x) x", "lambdas", "\\"),
    ("y ~ x %in% z", "'%in%' is not supported", "%in%"),
    ("y ~ if (x) z", "reserved word", "if"),
    ("y ~ TRUE", "reserved word", "TRUE"),
    ("y ~ x + NA_complex_", "reserved word", "NA_complex_"),
    ("y ~ ..1", "reserved word", "..1"),
    ("y ~ function(x) x", "reserved word", "function"),
    ("y ~ _x", "cannot start with '_'", "_x"),
    ("y ~ .", "all other columns", "."),
    ("y ~ x + ...", "all other columns", "..."),
    ("y ~ \x00", "U+0000", "\x00"),
    ("y ~ x\x1b[2J", "U+001B", "\x1b"),
    ("y ~ x\u202e", "U+202E", "\u202e"),
    ("y ~ x\u200b", "U+200B", "\u200b"),
    ("y ~ `a\x00b`", "U+0000", "\x00"),
    ("y ~ x + 2x", "malformed number '2x'", "2x"),
    ("y ~ 0x1F", "malformed number", "0x1F"),
    ("y ~ x ~ z", "exactly one '~'", "~"),
    ("y ~ (a ~ b)", "exactly one '~'", "~"),
    ("~ x", "no response", "~"),
    ("1 ~ x", "uses no column", "1"),
    ("y ~ (x", "never closed", "("),
    ("y ~ log(x", "never closed", "("),
    ("y ~ x)", "')' without a matching '('", ")"),
    ("y ~ x + ", "ends too early", ""),
    ("y ~ x + * z", "unexpected operator '*'", "*"),
    ("y x", "unexpected name 'x'", "x"),
    ("y ~ x, z", "','", ","),
    ("y ~ x = z", "'='", "="),
    ("y ~ log(x, base = 2)", "log() takes exactly one argument", "log"),
    ("y ~ log()", "log() takes exactly one argument", "log"),
    ("y ~ poly(x)", "poly() is written poly(x, k)", "poly"),
    ("y ~ poly(x, 11)", "degree of poly()", "11"),
    ("y ~ poly(x, 2.5)", "degree of poly()", "2.5"),
    ("y ~ poly(x, z)", "degree of poly()", "z"),
    ("y ~ poly(x, raw = 2)", "poly() is written", "poly"),
    ("y ~ I(poly(x, 2))", "makes a whole model term", "poly"),
    ("y ~ log(factor(x))", "makes a whole model term", "factor"),
    ("y ~ I(x:z)", "':' cannot be used inside", ":"),
    ("y ~ I(x | z)", "'|' is only allowed", "|"),
    ("y ~ 2", "the number 2 cannot be a term", "2"),
    ("y ~ 2*x", "cannot be part of an interaction", "2"),
    ("y ~ x^1", "power of a formula term", "1"),
    ("y ~ x^z", "power of a formula term", "z"),
    ("y ~ y + x", "response 'y' also appears", "y"),
    # random-effects and lmList misuse
    ("y ~ x + (1 | (1 | g))", "nested bars", "|"),
    ("y ~ (1 | g | h)", "second '|'", "|"),
    ("y ~ (x | )", "unexpected ')'", ")"),
    ("y ~ ( | g)", "unexpected operator '|'", "|"),
    ("y ~ (0 | g)", "no effects", "0"),
    ("y ~ (1 | factor(g))", "must be a column name", "factor"),
    ("y ~ (1 | g + h)", "must be a column name", "g"),
    ("y ~ (1 | a*b)", "must be a column name", "a"),
    ("y ~ (1 | a/(b + c))", "must be a column name", "b"),
    ("y ~ (1 | 1)", "must be a column name", "1"),
    ("y ~ x - (1 | g)", "cannot be removed", "("),
    ("y ~ x:(1 | g)", "'|' is only allowed", "|"),
    ("y ~ log(x | g)", "'|' is only allowed", "|"),
    ("y | g ~ x", "cannot appear in the response", "|"),
    ("y ~ x || g", "parentheses", "||"),
    ("y ~ x | g | h", "second '|'", "|"),
    ("y ~ x | a/b", "use ':' rather than '/'", "a"),
    ("y ~ x + (1 | g) | h", "cannot also have random-effects terms", "1"),
]


@pytest.mark.parametrize(("text", "fragment", "token"), HOSTILE)
def test_hostile_formula_is_refused_and_pointed_at(text: str, fragment: str, token: str) -> None:
    error = refuse(text)
    assert fragment in error.message
    assert error.position is not None
    if token:
        assert text[error.position:].startswith(token), (error.position, str(error))
    lines = str(error).splitlines()
    assert lines[-1] == "  " + " " * error.position + "^"
    assert not PWNED.exists()


def test_nothing_was_executed() -> None:
    for text, _, _ in HOSTILE:
        with pytest.raises(FormulaError):
            parse_formula(text)
    assert not PWNED.exists()


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_formula(text: str) -> None:
    assert "empty" in refuse(text).message


@pytest.mark.parametrize("text", ["y", "y + x", "log(x)"])
def test_missing_tilde(text: str) -> None:
    assert "no '~'" in refuse(text).message


@pytest.mark.parametrize("text", ["y ~", "y ~   "])
def test_empty_right_hand_side(text: str) -> None:
    assert "right-hand side is empty" in refuse(text).message


def test_non_text_is_refused() -> None:
    with pytest.raises(FormulaError):
        parse_formula(b"y ~ x")  # type: ignore[arg-type]


def test_control_characters_are_not_echoed() -> None:
    error = refuse("y ~ x +\x1b[31m z")
    assert "\x1b" not in str(error)


# -- resource bounds: refused at once, never a RecursionError --------------------------------

def test_huge_input_is_refused_without_echo() -> None:
    text = "y ~ " + "x + " * 250_000 + "x"
    error = refuse(text)
    assert "too long" in error.message
    assert len(str(error)) < 200


@pytest.mark.parametrize("text", [
    "y ~ " + "(" * 100_000 + "x" + ")" * 100_000,
    "y ~ " + "(" * 2000 + "x" + ")" * 2000,
    "y ~ " + "-" * 2000 + "x",
    "y ~ I(" + "x^" * 1000 + "x)",
    "y ~ " + "log(" * 1000 + "x" + ")" * 1000,
    "y ~ (1 | " + "(" * 1000 + "g" + ")" * 1000 + ")",
])
def test_deep_nesting_is_refused(text: str) -> None:
    error = refuse(text)
    assert "nested too deeply" in error.message or "too long" in error.message


def test_long_arithmetic_chain_is_bounded() -> None:
    # A left-deep I(x + x + ... ) would make every consumer recurse once per operand.
    error = refuse("y ~ I(" + " + ".join(["x"] * 500) + ")")
    assert "too deeply nested" in error.message


def test_long_sums_are_fine() -> None:
    names = [f"x{i}" for i in range(600)]
    formula = parse_formula("y ~ " + " + ".join(names))
    assert len(formula.fixed) == 600


@pytest.mark.parametrize("text", [
    "y ~ (a+b+c+d+e+f+g+h+i+j)^10",
    "y ~ a*b*c*d*e*f*g*h*i*j*k",
    "y ~ (a+b+c+d+e+f+g+h+i+j+k+l+m+n+o+p+q+r+s+t+u+v+w+z)^24",
    "y ~ " + ":".join(["(a+b+c+d+e+f+g+h)^8"] * 300),
    "y ~ (a+b+c+d+e+f+g+h+i+j)^1000000000000",
])
def test_term_explosion_is_refused(text: str) -> None:
    error = refuse(text)
    assert "more than 1000 terms" in error.message or "too complex" in error.message \
        or "too long" in error.message


def test_a_huge_power_stops_at_the_full_interaction() -> None:
    formula = parse_formula("y ~ (a+b+c+d+e+f+g+h+i)^1000000000000")
    assert len(formula.fixed) == 2**9 - 1


def test_many_random_terms_are_refused() -> None:
    text = "y ~ " + " + ".join(f"(1 | g{i})" for i in range(150))
    assert "random-effects terms" in refuse(text).message


# -- property: arbitrary text parses or raises FormulaError, nothing else --------------------

FORMULA_ALPHABET = string.ascii_letters[:8] + "0123 ~+-*/:^()|,.`_'\"[]=%$@!\\\x00\n\t{}" + "yé"
FRAGMENTS = ["y", "x", "g", "a.b", "`a b`", "1", "0", "2", "~", "+", "-", "*", "/", ":", "^",
             "|", "||", "(", ")", ",", "=", " ", "log(", "I(", "poly(", "factor(", "scale(",
             "degree", "__", ".", "%in%", "e5", "L"]


def _parses_or_formula_error(text: str) -> None:
    try:
        parse_formula(text)
    except FormulaError as error:
        assert error.message
        assert error.position is None or 0 <= error.position <= len(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    _parses_or_formula_error(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=FORMULA_ALPHABET, max_size=80))
def test_formula_alphabet(text: str) -> None:
    _parses_or_formula_error(text)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40))
def test_formula_fragments(parts: list[str]) -> None:
    _parses_or_formula_error("y ~ " + "".join(parts))
    _parses_or_formula_error("".join(parts))


def test_no_marker_file_at_the_end() -> None:
    assert not os.path.exists(PWNED)
