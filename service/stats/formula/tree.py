"""The parse tree of a model formula: frozen, typed, and free of anything executable.

The parser (``parser.py``) is the only producer of these objects; the design builder
(``service/stats/design``) is their main consumer. A tree is already *expanded*: ``a*b``
has become the terms ``a``, ``b``, ``a:b``; ``(x || g)`` has become two random terms;
``(1 | a/b)`` has become ``(1 | a) + (1 | b:a)``; removed terms are gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, TypeAlias

ArithmeticOp: TypeAlias = Literal["+", "-", "*", "/", "^"]


@dataclass(frozen=True)
class Column:
    """A reference to a data column (written bare or in backticks)."""

    name: str


@dataclass(frozen=True)
class Number:
    """A numeric literal, kept with the text it was written as (R prints it that way)."""

    value: float
    text: str


@dataclass(frozen=True)
class Call:
    """An allow-listed function applied to arguments: ``log(x)``, ``poly(x, 2)``, ``I(x^2)``."""

    function: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class BinOp:
    """Arithmetic inside ``I(...)`` (or a function argument): never a formula operator."""

    op: ArithmeticOp
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Negate:
    """Unary minus inside ``I(...)``."""

    operand: Expr


Expr: TypeAlias = Column | Number | Call | BinOp | Negate


@dataclass(frozen=True)
class Term:
    """One model term: the interaction of its factors. ``Term(())`` is the intercept.

    ``label`` is R's label (``Exercise:State``, ``log(x)``, ``I(x^2)``), factors joined by ``:``
    in the order their variables first appear in the formula (R: ``y ~ b + a + a:b`` labels
    the interaction ``b:a``); ``factors`` is in the same order.

    ``factor_labels`` (added by the parser; empty when a Term is built by hand) holds R's
    deparse of each factor exactly as R prints it, e.g. ``poly(x, degree = 2)`` or
    ``I((x + 1)^2)``, which the ``Expr`` alone cannot reproduce (R keeps argument names and
    written parentheses). It takes no part in equality.
    """

    factors: tuple[Expr, ...]
    label: str
    factor_labels: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_intercept(self) -> bool:
        return not self.factors

    @property
    def order(self) -> int:
        """R's term order: the number of factors (main effects 1, two-way interactions 2)."""
        return len(self.factors)


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects bar after expansion: ``(intercept + terms | group)``.

    ``group`` holds the column names whose interaction is the grouping factor, in lme4's
    order, and ``group_label`` is lme4's label for it (``Subject``, ``cask:batch``,
    ``recipe:replicate``).
    """

    intercept: bool
    terms: tuple[Term, ...]
    group: tuple[str, ...]
    group_label: str


@dataclass(frozen=True)
class Formula:
    """A parsed and expanded model formula.

    ``fixed`` lists the fixed-effect terms without the intercept, in R's order (by
    ``order``, then order of appearance). ``by_group`` is set for lme4's ``lmList``
    syntax ``y ~ x | g`` (one separate fit per level of ``g``).

    ``offsets`` are the expressions of ``offset(...)`` items of the fixed part: the model
    is fitted to the response minus their sum, and predictions add it back.

    ``weights`` is not part of the text either: the column of prior weights (lm's and
    lmer's ``weights`` argument), attached by ``with_weights``.

    ``contrasts`` is not part of the text: lmer's and lm's ``contrasts`` argument, the
    coding of factor columns of the fixed part (column, R's function name), attached by
    ``with_contrasts`` so that every design rebuilt from the formula codes alike.
    """

    text: str
    response: Expr
    intercept: bool
    fixed: tuple[Term, ...]
    random: tuple[RandomTerm, ...]
    by_group: tuple[str, ...] | None = None
    offsets: tuple[Expr, ...] = ()
    contrasts: tuple[tuple[str, str], ...] = ()
    weights: str | None = None

    @property
    def kind(self) -> Literal["lm", "lmm", "lm_by_group"]:
        if self.by_group is not None:
            return "lm_by_group"
        return "lmm" if self.random else "lm"


def with_contrasts(formula: Formula, contrasts: Mapping[str, str] | None) -> Formula:
    """The formula with the coding of factor columns (``{"recipe": "contr.sum"}``)."""
    return replace(formula, contrasts=tuple((contrasts or {}).items()))


def with_weights(formula: Formula, weights: str | None) -> Formula:
    """The formula with the column of prior weights (None: unit weights)."""
    return replace(formula, weights=weights)
