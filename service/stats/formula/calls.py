"""The allow-listed functions and the arithmetic allowed inside them.

A function call is accepted only if its name is in ``ALLOWED_FUNCTIONS``; the design
builder gives each one its meaning (R's ``log``, ``scale``, ``poly``...). Arguments are
plain arithmetic on columns and numbers, converted here to the frozen ``tree`` types.
"""

from __future__ import annotations

import math

from service.stats.formula._source import Source, show
from service.stats.formula.syntax import (
    Node,
    SCall,
    SName,
    SNumber,
    SParen,
    SPower,
    SUnary,
    deparse,
    position,
    unwrap,
)
from service.stats.formula.tree import ArithmeticOp, BinOp, Call, Column, Expr, Negate, Number

#: R's elementwise mathematical functions of one argument (``round`` with R's default
#: ``digits = 0``), usable anywhere: terms, the response, inside I() or each other.
MATH_FUNCTIONS = frozenset({
    "log", "log2", "log10", "log1p", "exp", "expm1", "sqrt", "abs",
    "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
    "floor", "ceiling", "round", "trunc", "sign",
})
#: Numeric functions usable anywhere: the mathematical ones, ``scale`` and ``I``.
ARITHMETIC_FUNCTIONS = MATH_FUNCTIONS | {"scale", "I"}
#: R's constants, read as numbers unless the data has a column of that name (R's
#: model.frame looks variables up in the data first): ``sin(2*pi*Time)``.
CONSTANTS: dict[str, float] = {"pi": math.pi}
#: Functions that make a whole term (a basis or a categorical), never part of arithmetic;
#: ``offset(expr)`` is a term of the fixed part that adds ``expr`` with coefficient 1.
TERM_FUNCTIONS = frozenset({"poly", "factor", "C", "offset"})
ALLOWED_FUNCTIONS = ARITHMETIC_FUNCTIONS | TERM_FUNCTIONS

#: Highest degree accepted for poly(x, k).
MAX_POLY_DEGREE = 10
#: Deepest arithmetic expression accepted (a long ``I(a + b + ...)`` counts one per operand),
#: so consumers can walk an ``Expr`` recursively.
MAX_EXPR_DEPTH = 60

_ARITHMETIC: dict[str, ArithmeticOp] = {"+": "+", "-": "-", "*": "*", "/": "/"}
_ALLOWED_TEXT = ", ".join(sorted(ALLOWED_FUNCTIONS, key=str.lower))


def check_function_name(source: Source, name: str, pos: int) -> None:
    """Refuse a call to anything outside the allow-list, naming what is allowed."""
    if name not in ALLOWED_FUNCTIONS:
        raise source.error(
            f"unknown function {show(name)}; allowed: {_ALLOWED_TEXT}", pos, name)


def offset_expr(source: Source, node: SCall) -> Expr:
    """The expression of ``offset(expr)``: any arithmetic the formula language evaluates."""
    _check_single_argument(source, node)
    expr, _ = to_expr(source, node.args[0].value)
    return expr


def term_call(source: Source, node: SCall) -> Call:
    """A call used as a model variable: ``log(x)``, ``poly(x, 2)``, ``factor(cyl)``."""
    if node.function == "poly":
        return _poly(source, node)
    _check_single_argument(source, node)
    arg, _ = to_expr(source, node.args[0].value)
    return Call(node.function, (arg,))


def to_expr(source: Source, node: Node) -> tuple[Expr, int]:
    """Arithmetic syntax as a tree ``Expr``, with its depth.

    Formula operators (``:``, ``|``) and term-only functions are refused with a message
    that says where they are allowed.
    """
    if isinstance(node, SName):
        if node.name in CONSTANTS:
            return Number(CONSTANTS[node.name], node.name), 1
        return Column(node.name), 1
    if isinstance(node, SNumber):
        return Number(node.value, node.text), 1
    if isinstance(node, SParen):
        return to_expr(source, node.inner)
    if isinstance(node, SCall):
        if node.function in TERM_FUNCTIONS:
            raise source.error(
                f"{node.function}() makes a whole model term and cannot be used inside an "
                f"expression: write it as a term, as in 'y ~ {deparse(node)}'",
                node.pos, node.function)
        _check_single_argument(source, node)
        arg, depth = to_expr(source, node.args[0].value)
        return _bounded(source, Call(node.function, (arg,)), depth + 1, node.pos)
    if isinstance(node, SUnary):
        operand, depth = to_expr(source, node.operand)
        if node.op == "+":
            return operand, depth
        return _bounded(source, Negate(operand), depth + 1, node.pos)
    if isinstance(node, SPower):
        base, d1 = to_expr(source, node.base)
        exponent, d2 = to_expr(source, node.exponent)
        return _bounded(source, BinOp("^", base, exponent), max(d1, d2) + 1, node.pos)
    expr, depth = to_expr(source, node.first)
    for op, pos, right_node in node.rest:
        if op not in ("+", "-", "*", "/"):
            raise source.error(_formula_operator_message(op), pos, op)
        right, d2 = to_expr(source, right_node)
        depth = max(depth, d2) + 1
        expr, depth = _bounded(source, BinOp(_ARITHMETIC[op], expr, right), depth, pos)
    return expr, depth


def _formula_operator_message(op: str) -> str:
    if op in ("|", "||"):
        return (f"'{op}' is only allowed in a random-effects term '(terms | group)' or once "
                "at the top of the right-hand side for per-group fits ('y ~ x | g')")
    return (f"the formula operator '{op}' cannot be used inside a function or the "
            "response; only + - * / ^ are arithmetic there")


def _bounded(source: Source, expr: Expr, depth: int, pos: int) -> tuple[Expr, int]:
    if depth > MAX_EXPR_DEPTH:
        raise source.error(
            f"the expression is too deeply nested (more than {MAX_EXPR_DEPTH} operations)",
            pos)
    return expr, depth


def _check_single_argument(source: Source, node: SCall) -> None:
    if node.function == "round" and len(node.args) == 2:
        raise source.error(
            "round() takes one argument here: round(x) rounds to whole numbers, half to "
            "even as R's default digits = 0 does; round(x, digits) is not supported",
            node.pos, node.function)
    if len(node.args) != 1:
        raise source.error(
            f"{node.function}() takes exactly one argument, as in {node.function}(x); "
            f"got {len(node.args)}", node.pos, node.function)
    if node.args[0].name is not None:
        raise source.error(
            f"{node.function}() takes no named arguments", position(node.args[0].value),
            node.args[0].name)


def _poly(source: Source, node: SCall) -> Call:
    usage = "poly(x, k) with k a whole number from 1 to " f"{MAX_POLY_DEGREE}"
    args = node.args
    if len(args) != 2 or args[0].name is not None or args[1].name not in (None, "degree"):
        raise source.error(f"poly() is written {usage}", node.pos, "poly")
    x, _ = to_expr(source, args[0].value)
    degree = unwrap(args[1].value)
    if (not isinstance(degree, SNumber) or degree.value != int(degree.value)
            or not 1 <= degree.value <= MAX_POLY_DEGREE):
        pos = position(args[1].value)
        raise source.error(f"the degree of poly() must be a whole number from 1 to "
                           f"{MAX_POLY_DEGREE}: write {usage}", pos)
    return Call("poly", (x, Number(degree.value, degree.text)))


__all__ = ["ALLOWED_FUNCTIONS", "CONSTANTS", "MATH_FUNCTIONS", "check_function_name",
           "offset_expr", "term_call", "to_expr"]
