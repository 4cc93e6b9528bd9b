"""The size of a model's design, from its formula and its dataset's column profile alone.

Known before any data is read: the number of rows, each column's kind and its number of
distinct values (levels). From them follow, by R's coding rules (``terms.code_terms``), the
columns of the fixed-effects matrix X, the columns of the random-effects matrix Z (levels ×
terms of each bar) and an estimate of the memory the fit needs at least:

- X, ``n × p`` doubles;
- per random-effects term, its values in Z (``n × q`` doubles and a level index per row),
  and for the term with most levels, the per-level blocks of Z'Z and Z'[X y];
- the dense Schur block of the other terms, ``m × m`` doubles for their ``m`` columns
  together (the LMM engine factors it densely: ``lmm.structure.MAX_DENSE_COLUMNS``).

The levels counted are those of the whole column, an upper bound of those left after rows
with missing values are dropped; an interaction grouping factor ``a:b`` has at most the
product of its parts' levels and at most one per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from service.stats.design.expr import deparse, factor_column, is_categorical_expr
from service.stats.design.terms import TermSpec, code_terms
from service.stats.formula.tree import Call, Expr, Formula, Number, RandomTerm, Term

DOUBLE = 8
INDEX = 4


@dataclass(frozen=True)
class TermSize:
    """The columns one term contributes (``label`` as R prints it)."""

    label: str
    columns: int


@dataclass(frozen=True)
class RandomSize:
    """One random-effects bar: ``terms`` columns per level of ``group``."""

    group: str
    terms: int
    levels: int

    @property
    def columns(self) -> int:
        return self.terms * self.levels


@dataclass(frozen=True)
class DesignSize:
    n_rows: int
    fixed: tuple[TermSize, ...]  # the intercept first, when there is one
    random: tuple[RandomSize, ...]
    x_bytes: int
    z_bytes: int
    schur_bytes: int

    @property
    def fixed_columns(self) -> int:
        """Columns of X."""
        return sum(t.columns for t in self.fixed)

    @property
    def random_columns(self) -> int:
        """Columns of Z: levels × terms, summed over the bars."""
        return sum(r.columns for r in self.random)

    @property
    def schur_columns(self) -> int:
        """Columns of every random-effects term but the one with most levels."""
        return self.random_columns - (self.largest_random.columns if self.random else 0)

    @property
    def largest_random(self) -> RandomSize:
        return max(self.random, key=lambda r: r.levels)

    @property
    def largest_fixed(self) -> TermSize:
        return max(self.fixed, key=lambda t: t.columns)

    @property
    def memory_bytes(self) -> int:
        return self.x_bytes + self.z_bytes + self.schur_bytes


def design_size(formula: Formula, kinds: Mapping[str, str], levels: Mapping[str, int],
                n_rows: int) -> DesignSize:
    """The design size of ``formula`` on a dataset of ``n_rows`` rows whose columns have
    these kinds (``numeric``, ``categorical``, ``boolean``) and numbers of levels.

    The formula's columns must be known (``check_columns`` first).
    """
    widths = _variable_widths(formula, kinds, levels)
    categorical = {label for label, (is_factor, _) in widths.items() if is_factor}
    fixed_specs = code_terms([_labels(t) for t in formula.fixed], categorical, formula.intercept)
    fixed = ([TermSize("(Intercept)", 1)] if formula.intercept else []) + [
        TermSize(term.label, _columns(spec, widths))
        for term, spec in zip(formula.fixed, fixed_specs, strict=True)]
    random = tuple(_random_size(bar, widths, categorical, levels, n_rows)
                   for bar in formula.random)
    p = sum(t.columns for t in fixed)
    x_bytes = n_rows * p * DOUBLE
    z_bytes = 0
    schur = 0
    if random:
        largest = max(random, key=lambda r: r.levels)
        for bar in random:
            z_bytes += n_rows * (bar.terms * DOUBLE + INDEX)
        # the largest term's per-level blocks of Z'Z and Z'[X y]
        z_bytes += largest.levels * largest.terms * (largest.terms + p + 1) * DOUBLE
        m = sum(r.columns for r in random) - largest.columns
        schur = m * m * DOUBLE
    return DesignSize(n_rows=n_rows, fixed=tuple(fixed), random=random, x_bytes=x_bytes,
                      z_bytes=z_bytes, schur_bytes=schur)


def _labels(term: Term) -> tuple[str, ...]:
    return tuple(dict.fromkeys(deparse(f) for f in term.factors))


def _variable_widths(formula: Formula, kinds: Mapping[str, str], levels: Mapping[str, int]
                     ) -> dict[str, tuple[bool, int]]:
    """Each distinct term factor: (categorical, its levels or its numeric columns)."""
    terms = list(formula.fixed) + [t for bar in formula.random for t in bar.terms]
    widths: dict[str, tuple[bool, int]] = {}
    for term in terms:
        for expr in term.factors:
            label = deparse(expr)
            if label in widths:
                continue
            if is_categorical_expr(expr, kinds):
                widths[label] = (True, max(levels.get(factor_column(expr), 2), 1))
            else:
                widths[label] = (False, _numeric_width(expr))
    return widths


def _numeric_width(expr: Expr) -> int:
    """Columns of a numeric factor: ``poly(x, k)`` has k, others one."""
    if (isinstance(expr, Call) and expr.function == "poly" and len(expr.args) == 2
            and isinstance(expr.args[1], Number) and expr.args[1].value >= 1):
        return int(expr.args[1].value)
    return 1


def _columns(spec: TermSpec, widths: Mapping[str, tuple[bool, int]]) -> int:
    columns = 1
    for label, contrasts in zip(spec.variables, spec.contrasts, strict=True):
        is_factor, width = widths[label]
        columns *= max(width - 1, 0) if is_factor and contrasts else width
    return columns


def _random_size(bar: RandomTerm, widths: Mapping[str, tuple[bool, int]],
                 categorical: set[str], levels: Mapping[str, int], n_rows: int) -> RandomSize:
    specs: Sequence[TermSpec] = code_terms([_labels(t) for t in bar.terms], categorical,
                                           bar.intercept)
    terms = int(bar.intercept) + sum(_columns(spec, widths) for spec in specs)
    group_levels = 1
    for column in bar.group:
        group_levels *= max(levels.get(column, 1), 1)
        group_levels = min(group_levels, n_rows)
    return RandomSize(bar.group_label, terms, group_levels)
