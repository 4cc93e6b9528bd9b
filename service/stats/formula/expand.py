"""``parse_formula``: formula text to the frozen, expanded tree of ``tree.py``."""

from __future__ import annotations

from service.stats.formula._source import Source
from service.stats.formula.bars import MAX_RANDOM_TERMS, expand_bar, interaction_names, split_bars
from service.stats.formula.calls import to_expr
from service.stats.formula.columns import expr_columns
from service.stats.formula.parser import parse_syntax
from service.stats.formula.syntax import Node, SChain, deparse, position, unwrap
from service.stats.formula.terms import TermEncoder
from service.stats.formula.tree import Expr, Formula, RandomTerm


def parse_formula(text: str) -> Formula:
    """Parse and expand an R/lme4 model formula, without evaluating anything.

    Parameters
    ----------
    text : str
        A two-sided formula: ``y ~ x``, ``y ~ a*b + (1 + x | g)``, ``y ~ x | g`` (lmList).

    Returns
    -------
    Formula
        The expanded tree: fixed terms in R's order, random terms in formula order.

    Raises
    ------
    FormulaError
        For anything that is not an allowed formula; the message names the offending token
        and ``position`` points at it.
    """
    if not isinstance(text, str):
        raise Source("").error(f"a formula must be text, not {type(text).__name__}", None)
    source = Source(text)
    lhs, rhs = parse_syntax(source)
    response = _response(source, lhs)

    by_group: tuple[str, ...] | None = None
    top = rhs
    if isinstance(rhs, SChain) and rhs.ops & {"|", "||"}:
        top, by_group = _lmlist(source, rhs)

    fixed_items, bars = split_bars(source, top)
    if by_group is not None and bars:
        raise source.error(
            "a per-group formula (y ~ x | g) cannot also have random-effects terms",
            position(bars[0].lhs))
    encoder = TermEncoder(source)
    encoder.register(response, deparse(lhs), position(lhs))  # R: the response is variable 1
    sets = encoder.expand(fixed_items)
    if any(0 in s for s in sets):
        raise source.error(
            f"the response '{deparse(lhs)}' also appears on the right-hand side",
            encoder.reused_at.get(0, position(rhs)))
    random: list[RandomTerm] = []
    for bar in bars:
        random.extend(expand_bar(source, bar))
        if len(random) > MAX_RANDOM_TERMS:
            raise source.error(
                f"more than {MAX_RANDOM_TERMS} random-effects terms", position(bar.lhs))
    return Formula(text=text, response=response, intercept=encoder.intercept,
                   fixed=encoder.to_terms(sets), random=tuple(random), by_group=by_group,
                   offsets=tuple(encoder.offsets))


def _response(source: Source, lhs: Node) -> Expr:
    inner = unwrap(lhs)
    if isinstance(inner, SChain) and inner.ops & {"|", "||"}:
        op, pos, _ = next(i for i in inner.rest if i[0] in ("|", "||"))
        raise source.error(f"'{op}' cannot appear in the response (left of '~')", pos, op)
    expr, _ = to_expr(source, lhs)
    if not _has_column(expr):
        raise source.error(
            f"the response '{deparse(lhs)}' uses no column: write 'response ~ terms'",
            position(lhs))
    return expr


def _has_column(expr: Expr) -> bool:
    return bool(expr_columns(expr))


def _lmlist(source: Source, rhs: SChain) -> tuple[Node, tuple[str, ...]]:
    """lme4's ``lmList`` syntax ``y ~ x | g``: one bar at the top of the right-hand side."""
    op, pos, group = rhs.rest[0]
    if op == "||":
        raise source.error(
            "'||' belongs in a random-effects term in parentheses, as in (x || g)", pos, op)
    if len(rhs.rest) > 1:
        op2, pos2, _ = rhs.rest[1]
        raise source.error(
            f"a per-group formula has exactly one bar, as in 'y ~ x | g': found a second "
            f"'{op2}'", pos2, op2)
    inner = unwrap(group)
    if isinstance(inner, SChain) and inner.ops == {"/"}:
        raise source.error("a per-group formula (y ~ x | g) groups by one factor: use ':' "
                           "rather than '/'", position(inner))
    return rhs.first, interaction_names(source, group, "the group of 'y ~ x | g'")


__all__ = ["parse_formula"]
