"""Checks of a formula against a dataset's columns, before any matrix is built.

All unknown columns are reported at once, with close matches, in MixedModels.jl's words;
then every place a categorical column is used where a number is needed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping

from service.stats.design.contrasts import CODINGS
from service.stats.design.expr import (
    CATEGORICAL_FUNCTIONS,
    NUMERIC_FUNCTIONS,
    deparse,
    factor_column,
    is_categorical_expr,
)
from service.stats.errors import ArgumentError, DesignError
from service.stats.formula import formula_columns
from service.stats.formula.columns import bind_constants
from service.stats.formula.tree import BinOp, Call, Column, Expr, Formula, Negate


def check_columns(formula: Formula, columns: Mapping[str, str]) -> None:
    """Check that a formula's columns exist and have usable kinds.

    Parameters
    ----------
    formula
        The parsed formula.
    columns
        Column name -> kind (``"numeric"``, ``"categorical"`` or ``"boolean"``).

    Raises
    ------
    DesignError
        Listing every unknown column (with close matches), or every categorical column
        used where a number is needed (a numeric function, ``I()``, ``poly``, the response).
    """
    formula = bind_constants(formula, columns)
    unknown = [name for name in formula_columns(formula) if name not in columns]
    if unknown:
        raise DesignError("The following formula variables are not present in the dataset: "
                          + ", ".join(_with_suggestion(name, columns) for name in unknown))
    problems = list(dict.fromkeys(_kind_problems(formula, columns)))
    if problems:
        raise DesignError("; ".join(problems))


def _with_suggestion(name: str, columns: Mapping[str, str]) -> str:
    close = difflib.get_close_matches(name, list(columns), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in columns}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f"{name} (did you mean {close[0]}?)" if close else name


def _kind_problems(formula: Formula, columns: Mapping[str, str]) -> Iterator[str]:
    response = formula.response
    if isinstance(response, Column) and columns[response.name] == "categorical":
        yield (f"the response must be numeric, but column '{response.name}' is categorical")
    else:
        yield from _numeric_uses(response, columns, "the response")
    for offset in formula.offsets:
        yield from _numeric_uses(offset, columns, "offset()")
    factors: list[Expr] = [f for term in formula.fixed for f in term.factors]
    factors += [f for r in formula.random for term in r.terms for f in term.factors]
    for factor in factors:
        yield from _numeric_uses(factor, columns, None)


def _numeric_uses(expr: Expr, columns: Mapping[str, str], context: str | None) -> Iterator[str]:
    """Problems with categorical columns read by ``expr`` where ``context`` needs a number."""
    if isinstance(expr, Column):
        if context is not None and columns[expr.name] == "categorical":
            yield f"column '{expr.name}' is categorical; {context} needs a numeric column"
    elif isinstance(expr, Call):
        if expr.function in CATEGORICAL_FUNCTIONS:
            if context is not None:
                yield f"{deparse(expr)} is categorical; {context} needs a number"
            return
        if expr.function not in NUMERIC_FUNCTIONS:
            yield f"{expr.function}() is not an allowed function"
            return
        for arg in expr.args:
            yield from _numeric_uses(arg, columns, f"{expr.function}()")
    elif isinstance(expr, BinOp):
        yield from _numeric_uses(expr.left, columns, context or "arithmetic")
        yield from _numeric_uses(expr.right, columns, context or "arithmetic")
    elif isinstance(expr, Negate):
        yield from _numeric_uses(expr.operand, columns, context or "arithmetic")


def resolve_contrasts(formula: Formula, columns: Mapping[str, str]) -> dict[str, str]:
    """The coding of each categorical variable of the fixed part named by the formula's
    ``contrasts`` (by column), keyed by the variable's label.

    Parameters
    ----------
    formula
        The parsed formula, with its ``contrasts`` attached.
    columns
        Column name -> kind.

    Raises
    ------
    ArgumentError
        Naming ``contrasts.<column>``: an unknown coding, or a column that is not a factor
        of the fixed part (lme4 codes only the fixed-effects matrix by ``contrasts``;
        R warns and ignores such an entry, which here would hide a mistake).
    """
    if not formula.contrasts:
        return {}
    factors = [f for term in formula.fixed for f in term.factors
               if is_categorical_expr(f, columns)]
    by_column: dict[str, list[str]] = {}
    for factor in factors:
        by_column.setdefault(factor_column(factor), []).append(deparse(factor))
    problems: dict[str, str] = {}
    out: dict[str, str] = {}
    for column, coding in formula.contrasts:
        if coding not in CODINGS:
            problems[f"contrasts.{column}"] = (f"unknown contrasts {coding!r}; use one of "
                                               + ", ".join(CODINGS))
        elif column not in by_column:
            problems[f"contrasts.{column}"] = _not_a_factor(column, formula, columns)
        else:
            out.update(dict.fromkeys(by_column[column], coding))
    if problems:
        raise ArgumentError(problems)
    return out


def _not_a_factor(column: str, formula: Formula, columns: Mapping[str, str]) -> str:
    if column not in columns:
        return f"the dataset has no column '{column}'"
    if any(column in r.group for r in formula.random):
        return (f"'{column}' is a grouping factor; contrasts code the factors of the fixed "
                "effects")
    if columns[column] == "numeric":
        return (f"column '{column}' is numeric, so the formula does not use it as a factor "
                f"(write factor({column}) to make it one)")
    return (f"'{column}' is not a factor among the fixed effects of the formula (lme4 "
            "applies contrasts to the fixed-effects matrix only)")
