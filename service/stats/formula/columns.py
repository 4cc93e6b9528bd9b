"""Which data columns a parsed formula uses."""

from __future__ import annotations

from service.stats.formula.tree import BinOp, Call, Column, Expr, Formula, Negate, Number


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
        The response's columns, then those of the fixed terms (inside functions too), the
        random terms and their grouping factors, and the ``lmList`` group.
    """
    names: list[str] = list(expr_columns(formula.response))
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
