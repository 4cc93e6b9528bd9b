"""The concrete syntax tree of a formula, as written, and R's way of printing it.

The parser builds these nodes; ``expand.py`` turns them into the frozen tree of ``tree.py``.
They keep what the frozen tree drops: positions (for error carets) and parentheses (R's
term labels print them: ``I((x + 1)^2)``). Left-associative operator runs are kept flat
(``Chain``) so that no later step recurses once per ``+`` of a long formula.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.stats.formula.lexer import R_RESERVED


@dataclass(frozen=True, slots=True)
class SName:
    name: str
    pos: int
    quoted: bool = False


@dataclass(frozen=True, slots=True)
class SNumber:
    text: str
    value: float
    pos: int


@dataclass(frozen=True, slots=True)
class SArg:
    """A call argument; ``name`` is set for ``degree = 2``."""

    value: Node
    name: str | None = None


@dataclass(frozen=True, slots=True)
class SCall:
    function: str
    args: tuple[SArg, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class SUnary:
    op: str  # "+" or "-"
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class SParen:
    inner: Node
    pos: int


@dataclass(frozen=True, slots=True)
class SPower:
    base: Node
    exponent: Node
    pos: int  # of the '^'


@dataclass(frozen=True, slots=True)
class SChain:
    """``first op1 x1 op2 x2 ...`` for operators of one precedence level, left to right."""

    first: Node
    rest: tuple[tuple[str, int, Node], ...]  # (operator, its position, operand)

    @property
    def ops(self) -> frozenset[str]:
        return frozenset(op for op, _, _ in self.rest)


Node = SName | SNumber | SCall | SUnary | SParen | SPower | SChain


def position(node: Node) -> int:
    """Where a node starts in the formula text."""
    while isinstance(node, SChain):
        node = node.first
    if isinstance(node, SPower):
        return position(node.base)
    return node.pos


def unwrap(node: Node) -> Node:
    """The node inside any number of redundant parentheses."""
    while isinstance(node, SParen):
        node = node.inner
    return node


# R's syntactic names (make.names): a letter, or a dot not followed by a digit, then
# letters, digits, dots and underscores.
_SYNTACTIC = re.compile(r"(?:[^\W\d_]|\.(?![0-9]))[\w.]*|\.", re.UNICODE)


def name_label(name: str) -> str:
    """A column name as R deparses it: backticked unless it is a syntactic name."""
    if _SYNTACTIC.fullmatch(name) and name not in R_RESERVED:
        return name
    return f"`{name}`"


def r_number(value: float, digits: int = 15) -> str:
    """A number as R writes it with ``digits`` significant digits: ``deparse`` and
    ``as.character`` (factor levels) both use 15.

    R's ``formatReal``: the fewest significant digits (at most ``digits``) that show the
    value rounded to ``digits``; fixed notation unless scientific is narrower (``1e+05``,
    ``1e-04``, but ``0.0001234`` and ``123456``). Fixed notation prints every integer
    digit of the double, as C's ``%.*f`` does (``12345678901234568``).
    """
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    negative = value < 0
    mantissa, exp_text = f"{abs(value):.{digits - 1}e}".split("e")
    significant = mantissa.replace(".", "").rstrip("0") or "0"
    exponent = int(exp_text)
    n_sig = len(significant)
    sci = significant[0] + ("." + significant[1:] if n_sig > 1 else "")
    sci += f"e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    decimals = max(0, n_sig - exponent - 1)
    fixed_width = (exponent + 1 if exponent >= 0 else 1) + (decimals + 1 if decimals else 0)
    sign = "-" if negative else ""
    if fixed_width <= len(sci):
        return sign + f"{abs(value):.{decimals}f}"
    return sign + sci


def number_label(node: SNumber) -> str:
    # R's term labels print 2L as 2 (deparse1line without keepInteger).
    return r_number(node.value)


# R's deparse puts spaces around these binary operators and none around / ^ :
_SPACED = frozenset({"+", "-", "*", "|", "||", "~"})


def deparse(node: Node) -> str:
    """R's ``deparse`` of a parsed expression (used for term and group labels).

    Recursion depth is bounded by the parser's nesting limit; chains are iterated.
    """
    if isinstance(node, SName):
        return name_label(node.name)
    if isinstance(node, SNumber):
        return number_label(node)
    if isinstance(node, SCall):
        args = ", ".join(
            (f"{arg.name} = " if arg.name else "") + deparse(arg.value) for arg in node.args)
        return f"{node.function}({args})"
    if isinstance(node, SUnary):
        return node.op + deparse(node.operand)
    if isinstance(node, SParen):
        return f"({deparse(node.inner)})"
    if isinstance(node, SPower):
        return f"{deparse(node.base)}^{deparse(node.exponent)}"
    parts = [deparse(node.first)]
    for op, _, operand in node.rest:
        parts.append(f" {op} " if op in _SPACED else op)
        parts.append(deparse(operand))
    return "".join(parts)
