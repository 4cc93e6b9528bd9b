"""Which data columns a parsed formula uses."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from service.stats.formula.calls import CONSTANTS
from service.stats.formula.tree import BinOp, Call, Column, Expr, Formula, Negate, Number, Term


def expr_columns(expr: Expr) -> list[str]:
    """Column names in an expression, left to right (with repeats)."""
    names: list[str] = []
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Column):
            names.append(node.name)
        elif isinstance(node, Call):
            stack.extend(reversed(node.args))
        elif isinstance(node, BinOp):
            stack.extend((node.right, node.left))
        elif isinstance(node, Negate):
            stack.append(node.operand)
        else:
            assert isinstance(node, Number)
    return names


def formula_columns(formula: Formula) -> tuple[str, ...]:
    """Every data column the formula uses, in order of first appearance, without repeats.

    Parameters
    ----------
    formula : Formula
        A parsed formula.

    Returns
    -------
    tuple of str
        The response's columns, then those of the offsets, the fixed terms (inside
        functions too), the random terms and their grouping factors, and the ``lmList``
        group.
    """
    names: list[str] = list(expr_columns(formula.response))
    for offset in formula.offsets:
        names.extend(expr_columns(offset))
    for term in formula.fixed:
        for factor in term.factors:
            names.extend(expr_columns(factor))
    for random in formula.random:
        for term in random.terms:
            for factor in term.factors:
                names.extend(expr_columns(factor))
        names.extend(random.group)
    names.extend(formula.by_group or ())
    return tuple(dict.fromkeys(names))


def bind_constants(formula: Formula, columns: Collection[str]) -> Formula:
    """The formula with R's constants (``pi``) read from the data where it has such a column.

    R's ``model.frame`` looks a name up in the data before the formula's environment, so a
    column called ``pi`` shadows the constant. The labels stay as written (``pi`` either way).
    """
    names = {name for name in CONSTANTS if name in columns}
    if not names:
        return formula

    def bind(expr: Expr) -> Expr:
        if isinstance(expr, Number):
            return Column(expr.text) if expr.text in names else expr
        if isinstance(expr, Call):
            return Call(expr.function, tuple(bind(a) for a in expr.args))
        if isinstance(expr, BinOp):
            return BinOp(expr.op, bind(expr.left), bind(expr.right))
        if isinstance(expr, Negate):
            return Negate(bind(expr.operand))
        return expr

    def bind_term(term: Term) -> Term:
        return replace(term, factors=tuple(bind(f) for f in term.factors))

    return replace(
        formula, response=bind(formula.response),
        offsets=tuple(bind(o) for o in formula.offsets),
        fixed=tuple(bind_term(t) for t in formula.fixed),
        random=tuple(replace(r, terms=tuple(bind_term(t) for t in r.terms))
                     for r in formula.random))
