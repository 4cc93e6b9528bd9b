"""Model-matrix columns of a list of terms, with R's ``model.matrix`` coding rules.

A categorical variable in a term is coded by treatment contrasts when the term with that
variable removed is contained in an earlier term (or is empty, i.e. the intercept), and by
full indicator coding otherwise (R's ``TermCode`` in ``models.c``). Without an intercept,
the first categorical variable of the first term that has one is fully coded. Within an
interaction the first factor varies fastest, as in R.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from service.stats.design.types import FloatArray, IntArray

INTERCEPT = "(Intercept)"


@dataclass(frozen=True)
class Variable:
    """One distinct term factor: a categorical variable or a numeric expression.

    ``label`` is R's deparsed text (``State``, ``factor(x)``, ``log(x)``, ``poly(x, 2)``)
    and identifies the variable; ``name`` is the text R prints for it when the parser knows
    it as written (``poly(x, degree = 2)``). Categorical variables read ``column`` and have
    ``levels``; numeric ones produce one column per entry of ``suffixes`` (``poly``:
    ``1``..``k``, otherwise ``""``).
    """

    label: str
    categorical: bool
    column: str = ""
    levels: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ("",)
    name: str = ""

    @property
    def display(self) -> str:
        """The name columns are built from: the parser's R text if known, else ``label``."""
        return self.name or self.label


@dataclass(frozen=True)
class TermSpec:
    """A term as coded: its variables (labels, in factor order) and, per variable,
    whether a categorical one uses contrasts (True) or full indicators (False)."""

    variables: tuple[str, ...]
    contrasts: tuple[bool, ...]


# The evaluated value of a variable: level codes (categorical) or an n × k matrix (numeric).
Value = IntArray | FloatArray


def code_terms(terms: Sequence[tuple[str, ...]], categorical: set[str],
               intercept: bool) -> tuple[TermSpec, ...]:
    """Decide contrasts or indicators for every categorical variable of every term (R's rule)."""
    specs: list[list[bool]] = []
    for j, term in enumerate(terms):
        row: list[bool] = []
        for variable in term:
            rest = set(term) - {variable}
            if variable not in categorical or not rest:
                row.append(True)
            else:
                row.append(any(rest <= set(earlier) for earlier in terms[:j]))
        specs.append(row)
    if not intercept:
        _code_first_factor_fully(terms, categorical, specs)
    return tuple(TermSpec(tuple(t), tuple(c)) for t, c in zip(terms, specs, strict=True))


def _code_first_factor_fully(terms: Sequence[tuple[str, ...]], categorical: set[str],
                             specs: list[list[bool]]) -> None:
    for j, term in enumerate(terms):
        for i, variable in enumerate(term):
            if variable in categorical:
                specs[j][i] = False
                return


def variable_block(variable: Variable, contrasts: bool,
                   value: Value) -> tuple[FloatArray, list[str]]:
    """The columns one variable contributes to a term, with their names."""
    if not variable.categorical:
        matrix = np.asarray(value, dtype=np.float64)
        return matrix, [variable.display + s for s in variable.suffixes]
    first = 1 if contrasts else 0
    codes = np.asarray(value)
    levels = variable.levels[first:]
    matrix = (codes[:, None] == np.arange(first, len(variable.levels))[None, :]).astype(np.float64)
    return matrix, [variable.display + level for level in levels]


def term_block(term: TermSpec, variables: Mapping[str, Variable],
               values: Mapping[str, Value], n: int) -> tuple[FloatArray, list[str]]:
    """The columns of one term: products of its variables' columns, first varying fastest."""
    matrix = np.ones((n, 1))
    names = [""]
    for label, contrasts in zip(term.variables, term.contrasts, strict=True):
        block, block_names = variable_block(variables[label], contrasts, values[label])
        # Column (j, i) = new column j times previous column i: previous varies fastest.
        width = block.shape[1] * matrix.shape[1]
        matrix = (block[:, :, None] * matrix[:, None, :]).reshape(n, width)
        names = [f"{prev}:{new}" if prev else new for new in block_names for prev in names]
    return matrix, names


def model_columns(intercept: bool, terms: Sequence[TermSpec], variables: Mapping[str, Variable],
                  values: Mapping[str, Value], n: int) -> tuple[FloatArray, list[str]]:
    """The full model matrix of an intercept flag plus terms, and R's column names."""
    blocks: list[FloatArray] = []
    names: list[str] = []
    if intercept:
        blocks.append(np.ones((n, 1)))
        names.append(INTERCEPT)
    for term in terms:
        block, block_names = term_block(term, variables, values, n)
        blocks.append(block)
        names.extend(block_names)
    if not blocks:
        return np.zeros((n, 0)), []
    return np.hstack(blocks), names
