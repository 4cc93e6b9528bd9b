"""Model-matrix columns of a list of terms, with R's ``model.matrix`` coding rules.

A categorical variable in a term is coded by treatment contrasts when the term with that
variable removed is contained in an earlier term (or is empty, i.e. the intercept), and by
full indicator coding otherwise (R's ``TermCode`` in ``models.c``). Without an intercept,
the first categorical variable of the first term that has one is fully coded. Within an
interaction the first factor varies fastest, as in R. Which contrasts a variable coded by
contrasts gets (treatment unless the model names another) is in its term's ``codings``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from service.stats.design.contrasts import TREATMENT, contrast_matrix
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
    whether a categorical one uses contrasts (True) or full indicators (False), and which
    contrasts (``codings``, R's function names; empty: all treatment)."""

    variables: tuple[str, ...]
    contrasts: tuple[bool, ...]
    codings: tuple[str, ...] = field(default=())

    def coding(self, index: int) -> str:
        """The contrasts of the variable at ``index`` (when it is coded by contrasts)."""
        return self.codings[index] if self.codings else TREATMENT


# The evaluated value of a variable: level codes (categorical) or an n × k matrix (numeric).
Value = IntArray | FloatArray


def code_terms(terms: Sequence[tuple[str, ...]], categorical: set[str], intercept: bool,
               codings: Mapping[str, str] | None = None) -> tuple[TermSpec, ...]:
    """Decide contrasts or indicators for every categorical variable of every term (R's
    rule); ``codings`` gives variables contrasts other than treatment (by label)."""
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
    chosen = {label: c for label, c in (codings or {}).items() if c != TREATMENT}
    return tuple(TermSpec(tuple(t), tuple(c), _term_codings(t, chosen))
                 for t, c in zip(terms, specs, strict=True))


def _term_codings(term: tuple[str, ...], chosen: Mapping[str, str]) -> tuple[str, ...]:
    if not any(v in chosen for v in term):
        return ()  # all treatment: the form every model had before codings existed
    return tuple(chosen.get(v, TREATMENT) for v in term)


def _code_first_factor_fully(terms: Sequence[tuple[str, ...]], categorical: set[str],
                             specs: list[list[bool]]) -> None:
    for j, term in enumerate(terms):
        for i, variable in enumerate(term):
            if variable in categorical:
                specs[j][i] = False
                return


def variable_block(variable: Variable, contrasts: bool, value: Value,
                   coding: str = TREATMENT) -> tuple[FloatArray, list[str]]:
    """The columns one variable contributes to a term, with their names."""
    if not variable.categorical:
        matrix = np.asarray(value, dtype=np.float64)
        return matrix, [variable.display + s for s in variable.suffixes]
    codes = np.asarray(value)
    if contrasts and coding != TREATMENT:
        table, suffixes = contrast_matrix(coding, variable.levels)
        return np.ascontiguousarray(table[codes]), [variable.display + s for s in suffixes]
    first = 1 if contrasts else 0
    levels = variable.levels[first:]
    matrix = (codes[:, None] == np.arange(first, len(variable.levels))[None, :]).astype(np.float64)
    return matrix, [variable.display + level for level in levels]


def term_block(term: TermSpec, variables: Mapping[str, Variable],
               values: Mapping[str, Value], n: int) -> tuple[FloatArray, list[str]]:
    """The columns of one term: products of its variables' columns, first varying fastest."""
    matrix, names = _term_columns(term, variables, values, n)
    # an array of its own, never a view of the values it was made from
    return (np.array(matrix, dtype=np.float64) if len(term.variables) == 1 else matrix), names


def _term_columns(term: TermSpec, variables: Mapping[str, Variable],
                  values: Mapping[str, Value], n: int) -> tuple[FloatArray, list[str]]:
    """``term_block``'s columns, which for a term of one variable may be a view of its
    values (that variable's columns times the ones they start from: the same numbers,
    x * 1.0 being x, without the products' arrays)."""
    if len(term.variables) == 1:
        return variable_block(variables[term.variables[0]], term.contrasts[0],
                              values[term.variables[0]], term.coding(0))
    matrix = np.ones((n, 1))
    names = [""]
    for i, (label, contrasts) in enumerate(zip(term.variables, term.contrasts, strict=True)):
        block, block_names = variable_block(variables[label], contrasts, values[label],
                                            term.coding(i))
        # Column (j, i) = new column j times previous column i: previous varies fastest.
        width = block.shape[1] * matrix.shape[1]
        matrix = (block[:, :, None] * matrix[:, None, :]).reshape(n, width)
        names = [f"{prev}:{new}" if prev else new for new in block_names for prev in names]
    return matrix, names


def model_columns(intercept: bool, terms: Sequence[TermSpec], variables: Mapping[str, Variable],
                  values: Mapping[str, Value], n: int) -> tuple[FloatArray, list[str]]:
    """The full model matrix of an intercept flag plus terms, and R's column names."""
    blocks: list[FloatArray] = []
    names: list[str] = [INTERCEPT] if intercept else []
    for term in terms:
        block, block_names = _term_columns(term, variables, values, n)
        blocks.append(block)
        names.extend(block_names)
    # written into one array made for them (numpy's hstack, for a few rows, costs more
    # than the numbers: a prediction's design is made per request)
    matrix = np.empty((n, len(names)))
    start = 0
    if intercept:
        matrix[:, 0] = 1.0
        start = 1
    for block in blocks:
        matrix[:, start:start + block.shape[1]] = block
        start += block.shape[1]
    return matrix, names
