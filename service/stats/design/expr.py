"""Parse-tree expressions as R prints them, as plain JSON, and the columns they read.

R names model-matrix columns after the deparsed expression (``log(x)``, ``I(x^2)``,
``poly(x, 2)1``), so the deparser follows R's ``deparse`` spacing and parenthesisation.
The JSON form lets a stored encoder rebuild its expressions without re-parsing text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from service.stats.errors import DesignError
from service.stats.formula.calls import MATH_FUNCTIONS
from service.stats.formula.lexer import R_RESERVED
from service.stats.formula.tree import BinOp, Call, Column, Expr, Negate, Number

_SYNTACTIC = re.compile(r"^((([A-Za-z]|[.][._A-Za-z])[._A-Za-z0-9]*)|[.])$")
# R's binary operator precedence (higher binds tighter); unary minus sits between ^ and * /.
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "^": 4}
_NEGATE_PRECEDENCE = 3
_SPACED = frozenset({"+", "-", "*"})

CATEGORICAL_FUNCTIONS = frozenset({"factor", "C"})
ELEMENTWISE_FUNCTIONS = MATH_FUNCTIONS
NUMERIC_FUNCTIONS = ELEMENTWISE_FUNCTIONS | {"scale", "poly", "I"}


def column_label(name: str) -> str:
    """A column name as R prints it: backticked unless it is a syntactic R name."""
    if _SYNTACTIC.match(name) and name not in R_RESERVED:
        return name
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def deparse(expr: Expr) -> str:
    """R's ``deparse`` of an expression: ``log(x)``, ``I(x^2)``, ``poly(x, 2)``, ``I(a * b)``."""
    if isinstance(expr, Column):
        return column_label(expr.name)
    if isinstance(expr, Number):
        return expr.text
    if isinstance(expr, Call):
        return f"{expr.function}({', '.join(deparse(a) for a in expr.args)})"
    if isinstance(expr, Negate):
        return "-" + _wrap(expr.operand, _NEGATE_PRECEDENCE, tighter_only=False)
    prec = _PRECEDENCE[expr.op]
    right_assoc = expr.op == "^"
    left = _wrap(expr.left, prec, tighter_only=right_assoc)
    # A unary minus on the right needs no parentheses (R prints x^-1 and a - -b).
    right = (deparse(expr.right) if isinstance(expr.right, Negate)
             else _wrap(expr.right, prec, tighter_only=not right_assoc))
    sep = f" {expr.op} " if expr.op in _SPACED else expr.op
    return f"{left}{sep}{right}"


def _wrap(expr: Expr, parent: int, *, tighter_only: bool) -> str:
    """Deparse a child, in parentheses when it binds less tightly than its parent needs."""
    text = deparse(expr)
    if isinstance(expr, BinOp):
        own = _PRECEDENCE[expr.op]
    elif isinstance(expr, Negate):
        own = _NEGATE_PRECEDENCE
    else:
        return text
    if own < parent or (tighter_only and own == parent):
        return f"({text})"
    return text


def expr_columns(expr: Expr) -> Iterator[str]:
    """The data columns an expression reads, in order of appearance (repeats included)."""
    if isinstance(expr, Column):
        yield expr.name
    elif isinstance(expr, Call):
        for arg in expr.args:
            yield from expr_columns(arg)
    elif isinstance(expr, BinOp):
        yield from expr_columns(expr.left)
        yield from expr_columns(expr.right)
    elif isinstance(expr, Negate):
        yield from expr_columns(expr.operand)


def is_categorical_expr(expr: Expr, kinds: Mapping[str, str]) -> bool:
    """Whether a term factor is categorical: ``factor(x)``, ``C(x)``, a text or boolean column."""
    if isinstance(expr, Call):
        return expr.function in CATEGORICAL_FUNCTIONS
    if isinstance(expr, Column):
        return kinds.get(expr.name) in ("categorical", "boolean")
    return False


def factor_column(expr: Expr) -> str:
    """The column a categorical factor reads: ``State`` for ``State`` and ``factor(State)``."""
    if isinstance(expr, Column):
        return expr.name
    if isinstance(expr, Call) and len(expr.args) == 1 and isinstance(expr.args[0], Column):
        return expr.args[0].name
    raise DesignError(f"{deparse(expr)}: factor() and C() take a single column")


def expr_to_json(expr: Expr) -> dict[str, Any]:
    """A plain-JSON form of an expression (for the stored encoder)."""
    if isinstance(expr, Column):
        return {"column": expr.name}
    if isinstance(expr, Number):
        return {"number": expr.value, "text": expr.text}
    if isinstance(expr, Call):
        return {"call": expr.function, "args": [expr_to_json(a) for a in expr.args]}
    if isinstance(expr, Negate):
        return {"negate": expr_to_json(expr.operand)}
    return {"op": expr.op, "left": expr_to_json(expr.left), "right": expr_to_json(expr.right)}


def expr_from_json(data: dict[str, Any]) -> Expr:
    """Inverse of :func:`expr_to_json`; refuses anything but the known node shapes."""
    if "column" in data:
        return Column(str(data["column"]))
    if "number" in data:
        return Number(float(data["number"]), str(data["text"]))
    if "call" in data:
        function = str(data["call"])
        if function not in NUMERIC_FUNCTIONS | CATEGORICAL_FUNCTIONS:
            raise DesignError(f"stored encoder uses an unknown function {function!r}")
        return Call(function, tuple(expr_from_json(a) for a in data["args"]))
    if "negate" in data:
        return Negate(expr_from_json(data["negate"]))
    op = data.get("op")
    if op not in _PRECEDENCE:
        raise DesignError(f"stored encoder has an unknown expression node {sorted(data)}")
    return BinOp(op, expr_from_json(data["left"]), expr_from_json(data["right"]))
