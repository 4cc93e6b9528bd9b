"""The design encoder: everything needed to rebuild X and the random blocks for new rows.

``build_design`` learns an encoder from the fitting data (levels, contrasts, ``scale``
and ``poly`` parameters, aliased columns, group levels); ``DesignEncoder.transform``
applies it to new data. ``to_json``/``from_json`` store it as plain JSON, never pickle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Literal

import numpy as np
import pandas as pd

from service.stats.design.expr import deparse, expr_columns
from service.stats.design.functions import Evaluator
from service.stats.design.serialize import encoder_from_json, encoder_to_json
from service.stats.design.terms import TermSpec, Value, Variable, model_columns
from service.stats.design.types import Design, FloatArray, IntArray, RandomBlock
from service.stats.design.values import (
    ColumnKind,
    factor_codes,
    format_number,
    level_key,
    numeric_values,
)
from service.stats.errors import PredictionError, StatsError
from service.stats.formula.tree import Column, Expr
from service.stats.rows import row_numbers

NewLevels = Literal["population", "error"]
CATEGORICAL: ColumnKind = "categorical"


@dataclass(frozen=True)
class _PlainPlan:
    """An encoder's reading of plain arrays (``DesignEncoder.transform_arrays``): the
    columns it needs; each factor's label, column and levels; each numeric variable's
    label, its column when the expression is one bare column (else None), its expression
    and the columns that reads; each random term's grouping columns' kinds."""

    columns: tuple[str, ...]
    factors: tuple[tuple[str, str, tuple[str, ...]], ...]
    numeric: tuple[tuple[str, str | None, Expr, tuple[str, ...]], ...]
    group_kinds: tuple[tuple[ColumnKind, ...], ...]


@dataclass(frozen=True, eq=False)
class RandomSpec:
    """One random-effects term as coded: ``(intercept + terms | group)``."""

    intercept: bool
    terms: tuple[TermSpec, ...]
    names: tuple[str, ...]
    group: tuple[str, ...]
    group_label: str
    levels: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class DesignEncoder:
    """What a fitted design needs to encode new rows exactly as the fitting rows were.

    ``variables`` maps each distinct term factor's label to its coding; ``exprs`` holds the
    expressions of the numeric ones; ``params`` the learned ``scale``/``poly`` parameters
    keyed by call text; ``kinds`` the kind each used column had when fitting.
    """

    response: Expr
    intercept: bool
    kinds: Mapping[str, ColumnKind]
    variables: Mapping[str, Variable]
    exprs: Mapping[str, Expr]
    params: Mapping[str, dict[str, Any]]
    fixed: tuple[TermSpec, ...]
    all_fixed_names: tuple[str, ...]
    random: tuple[RandomSpec, ...] = ()
    dropped_aliased: tuple[str, ...] = ()
    by_group: tuple[str, ...] | None = None
    offsets: tuple[Expr, ...] = ()

    @property
    def response_name(self) -> str:
        return deparse(self.response)

    @cached_property
    def fixed_names(self) -> tuple[str, ...]:
        """The fixed-effect column names after dropping aliased columns."""
        dropped = set(self.dropped_aliased)
        return tuple(n for n in self.all_fixed_names if n not in dropped)

    @cached_property
    def _level_indexes(self) -> dict[tuple[int, tuple[ColumnKind, ...]],
                                     tuple[tuple[str, ...], dict[str, int]]]:
        return {}

    def level_index(self, levels: tuple[str, ...], kinds: tuple[ColumnKind, ...]
                    ) -> dict[str, int]:
        """``level_positions`` of one of this encoder's level tuples, made once per encoder:
        found by the tuple's identity, not by hashing its every level (a one-row
        prediction against 20,000 groups spent 120 microseconds hashing them). The encoder
        holds its tuples, so an identity is not reused while the entry lives, and the
        entries go with the encoder (a model's predictor), not into a global cache."""
        key = (id(levels), kinds)
        known = self._level_indexes.get(key)
        if known is None or known[0] is not levels:
            known = (levels, level_positions(levels, kinds))
            self._level_indexes[key] = known
        return known[1]

    def to_json(self) -> dict[str, Any]:
        """A plain-JSON description of the encoder (``json.dumps`` works on it)."""
        return encoder_to_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DesignEncoder:
        """Rebuild an encoder stored with :meth:`to_json`."""
        return encoder_from_json(cls, RandomSpec, data)

    def transform(self, data: pd.DataFrame, *, new_levels: NewLevels = "population",
                  random: bool = True, values_checked: bool = False) -> Design:
        """Encode new rows as the fitting rows were encoded.

        Parameters
        ----------
        data
            New rows; the response column may be absent (then ``y`` is None).
        new_levels
            ``"population"``: a group level not seen in fitting (or a missing group value)
            gets code -1 (population-level prediction); ``"error"``: raise instead.
        random
            Whether to build the random-effects blocks (False needs no group columns).
        values_checked
            The caller has refused missing values already (``refuse_missing_values``).

        Raises
        ------
        PredictionError
            Missing columns, missing values, unknown levels of a fixed-effect factor, or
            (with ``new_levels="error"``) unseen group levels.
        """
        frame = data.reset_index(drop=True)
        self._require_columns(frame, random)
        if not values_checked:
            self.refuse_missing_values(frame, random)
        specs = self.random if random else ()
        values = evaluate_variables(self, frame, self._needed_variables(random),
                                    params=dict(self.params), error=PredictionError,
                                    learn=False)
        X = self.fixed_matrix(values, len(frame))
        blocks = tuple(self.block(spec, frame, values, new_levels, PredictionError)
                       for spec in specs)
        offset = self.offset_values(frame, PredictionError)
        y = self._response_or_none(frame)
        return Design(
            y=y if y is None or offset is None else y - offset, X=X,
            fixed_names=self.fixed_names, random=blocks,
            rows=np.arange(len(frame), dtype=np.intp), response_name=self.response_name,
            encoder=self, dropped_aliased=self.dropped_aliased, offset=offset)

    def transform_arrays(self, columns: Mapping[str, np.ndarray], n: int, *,
                         new_levels: NewLevels = "population",
                         random: bool = True) -> tuple[FloatArray, tuple[RandomBlock, ...]] | None:
        """X and the random blocks of a few complete rows given as arrays, by the same
        functions as :meth:`transform` but without a data frame (pandas costs tens of
        microseconds per operation, a one-row prediction a millisecond); None when the
        rows or the model need more than this covers, for :meth:`transform` to answer.

        ``columns`` holds float64 arrays for numeric columns and object arrays of level
        labels (text, as R writes them) for categorical ones, with no missing value. It
        covers models without offsets whose terms read numeric columns (through any
        expression) and factors of categorical columns, grouped by categorical columns:
        a new level of a factor, an unseen group with ``new_levels="error"``, any other
        column kind are left to :meth:`transform`, which says what is wrong.
        """
        plan = self._plain_plan if random else self._plain_plan_fixed
        if plan is None or any(c not in columns for c in plan.columns):
            return None
        values: dict[str, Value] = {}
        for label, column, levels in plan.factors:
            codes, unknown = recode(*label_codes(columns[column]), levels, (CATEGORICAL,),
                                    known=self.level_index(levels, (CATEGORICAL,)))
            if unknown:
                return None
            values[label] = codes
        params: dict[str, dict[str, Any]] | None = None
        for label, bare, expr, names in plan.numeric:
            if bare is not None:  # the column itself: the evaluator's result, without it
                vector = columns[bare]
                if not np.isfinite(vector).all():
                    return None
                values[label] = vector[:, None]
                continue
            params = dict(self.params) if params is None else params
            try:
                values[label], _ = Evaluator({name: columns[name] for name in names}, params,
                                             learn=False, error=PredictionError).variable(expr)
            except StatsError:
                return None
        blocks = []
        for spec, kinds in zip(self.random if random else (), plan.group_kinds, strict=True):
            parts = [group_labels(columns[c], kind)
                     for c, kind in zip(spec.group, kinds, strict=True)]
            joined = (parts[0] if len(parts) == 1 else
                      np.array([":".join(labels) for labels in zip(*parts, strict=True)],
                               dtype=object))
            codes, _ = recode(*label_codes(joined), spec.levels, kinds,
                              known=self.level_index(spec.levels, kinds))
            if new_levels == "error" and (codes < 0).any():
                return None
            blocks.append(self.coded_block(spec, codes, values, n))
        return self.fixed_matrix(values, n), tuple(blocks)

    def offset_values(self, frame: pd.DataFrame, error: type[StatsError]) -> FloatArray | None:
        """The sum of the ``offset(...)`` expressions per row (None without offsets)."""
        if not self.offsets:
            return None
        names = dict.fromkeys(c for o in self.offsets for c in expr_columns(o))
        columns = {n: numeric_values(frame[n], self.kinds[n], error) for n in names}
        evaluator = Evaluator(columns, dict(self.params), learn=False, error=error)
        total = np.zeros(len(frame))
        for offset in self.offsets:
            total = total + evaluator.variable(offset)[0][:, 0]
        return total

    @cached_property
    def _plain_plan(self) -> _PlainPlan | None:
        return self._plain_plan_of(random=True)

    @cached_property
    def _plain_plan_fixed(self) -> _PlainPlan | None:
        return self._plain_plan_of(random=False)

    def _plain_plan_of(self, random: bool) -> _PlainPlan | None:
        """What :meth:`transform_arrays` reads for every request, worked out once per
        encoder (immutable): None when the arrays never cover this model (offsets, a
        column kind they do not read)."""
        if self.offsets:
            return None
        factors: list[tuple[str, str, tuple[str, ...]]] = []
        numeric: list[tuple[str, str | None, Expr, tuple[str, ...]]] = []
        for label in self._needed_variables(random):
            variable = self.variables[label]
            if variable.categorical:
                if self.kinds.get(variable.column) != CATEGORICAL:
                    return None
                factors.append((label, variable.column, variable.levels))
                continue
            expr = self.exprs[label]
            names = tuple(dict.fromkeys(expr_columns(expr)))
            if any(self.kinds.get(name) != "numeric" for name in names):
                return None
            numeric.append((label, expr.name if isinstance(expr, Column) else None, expr,
                            names))
        group_kinds = []
        for spec in self.random if random else ():
            kinds = tuple(self.kinds.get(c, CATEGORICAL) for c in spec.group)
            if any(kind not in (CATEGORICAL, "numeric") for kind in kinds):
                return None
            group_kinds.append(kinds)
        return _PlainPlan(tuple(self.columns_used(random=random)), tuple(factors),
                          tuple(numeric), tuple(group_kinds))

    def fixed_matrix(self, values: Mapping[str, Value], n: int, *,
                     keep_aliased: bool = False) -> FloatArray:
        """X for evaluated variables (all columns, or without the aliased ones)."""
        X, names = model_columns(self.intercept, self.fixed, self.variables, values, n)
        if tuple(names) != self.all_fixed_names:
            raise PredictionError("the encoded columns differ from the fitted ones: "
                                  f"{names} != {list(self.all_fixed_names)}")
        if keep_aliased or not self.dropped_aliased:
            return X
        dropped = set(self.dropped_aliased)
        keep = [j for j, name in enumerate(names) if name not in dropped]
        return np.ascontiguousarray(X[:, keep])

    def block(self, spec: RandomSpec, frame: pd.DataFrame, values: Mapping[str, Value],
              new_levels: NewLevels, error: type[StatsError]) -> RandomBlock:
        """The random block of one term: level codes and the n × q covariates."""
        kinds = tuple(self.kinds.get(c, CATEGORICAL) for c in spec.group)
        codes, unseen = recode(*group_codes(frame, spec.group, self.kinds, error), spec.levels,
                               kinds, known=self.level_index(spec.levels, kinds))
        if new_levels == "error" and (codes < 0).any():
            if not unseen:
                unseen = ["(missing)"]
            raise PredictionError(f"group '{spec.group_label}' has levels not seen when "
                                  f"fitting: {', '.join(sorted(unseen))}")
        return self.coded_block(spec, codes, values, len(frame))

    def coded_block(self, spec: RandomSpec, codes: IntArray, values: Mapping[str, Value],
                    n: int) -> RandomBlock:
        """The random block of one term whose rows' level codes are known."""
        covariates, names = model_columns(spec.intercept, spec.terms, self.variables, values, n)
        return RandomBlock(group=spec.group_label, terms=tuple(names), levels=spec.levels,
                           codes=codes, covariates=covariates)

    def columns_used(self, *, random: bool = True, response: bool = False,
                     groups: bool = True) -> list[str]:
        """The data columns the fixed part with its offsets (and optionally random terms,
        their grouping columns, the response) reads."""
        names: list[str] = [c for o in self.offsets for c in expr_columns(o)]
        for label in self._needed_variables(random):
            variable = self.variables[label]
            names.extend([variable.column] if variable.categorical
                         else expr_columns(self.exprs[label]))
        if random and groups:
            names.extend(c for spec in self.random for c in spec.group)
        if response:
            names.extend(expr_columns(self.response))
        return list(dict.fromkeys(names))

    def _needed_variables(self, random: bool) -> list[str]:
        labels = [v for term in self.fixed for v in term.variables]
        if random:
            labels += [v for spec in self.random for term in spec.terms for v in term.variables]
        return list(dict.fromkeys(labels))

    def _require_columns(self, frame: pd.DataFrame, random: bool) -> None:
        absent = [c for c in self.columns_used(random=random) if c not in frame.columns]
        if absent:
            raise PredictionError("The following columns are needed for prediction but are "
                                  "not present in the new data: " + ", ".join(absent))

    def refuse_missing_values(self, frame: pd.DataFrame, random: bool) -> None:
        """Refuse new data with a missing value in a column a term reads, naming the rows
        as R numbers them. Missing group values are new levels (``new_levels`` decides);
        a group column also used as a term must be complete."""
        terms_only = self.columns_used(random=random, groups=False)
        columns = [c for c in self.columns_used(random=random)
                   if c in terms_only and c in frame.columns]
        if not columns:
            return
        # column by column: a sub-frame costs more than the check on a few rows
        missing = {c: np.asarray(frame[c].isna().to_numpy(), dtype=bool) for c in columns}
        rows = np.flatnonzero(np.logical_or.reduce(list(missing.values())))
        if len(rows):
            where = [c for c in columns if missing[c].any()]
            raise PredictionError(f"{len(rows)} row(s) have missing values in column(s) "
                                  f"{', '.join(where)}: {row_numbers(rows)}")

    def _response_or_none(self, frame: pd.DataFrame) -> FloatArray | None:
        names = list(dict.fromkeys(expr_columns(self.response)))
        if not all(n in frame.columns for n in names):
            return None
        try:
            columns = {n: numeric_values(frame[n], self.kinds.get(n, "numeric"), PredictionError)
                       for n in names}
            evaluator = Evaluator(columns, dict(self.params), learn=False, error=PredictionError)
            with np.errstate(all="ignore"):
                return np.asarray(evaluator.vector(self.response), dtype=np.float64)
        except StatsError:
            return None


def group_codes(frame: pd.DataFrame, group: tuple[str, ...], kinds: Mapping[str, ColumnKind],
                error: type[StatsError]) -> tuple[IntArray, tuple[str, ...]]:
    """Rows as codes into the group labels that occur (interaction values joined by ``:``).

    Code -1 marks a row with a missing group value.
    """
    parts = [factor_codes(frame[c], kinds.get(c, "categorical"), error) for c in group]
    if len(parts) == 1:
        return parts[0]
    valid = np.logical_and.reduce([codes >= 0 for codes, _ in parts])
    key = np.zeros(len(frame), dtype=np.int64)
    for codes, labels in parts:
        key = key * len(labels) + np.maximum(codes, 0)
    combos, inverse = np.unique(key[valid], return_inverse=True)
    names = []
    for combo in combos.tolist():
        pieces = []
        for _, labels in reversed(parts):
            combo, index = divmod(combo, len(labels))
            pieces.append(labels[index])
        names.append(":".join(reversed(pieces)))
    out = np.full(len(frame), -1, dtype=np.intp)
    out[valid] = inverse.reshape(-1)
    return out, tuple(names)


def group_labels(values: np.ndarray, kind: ColumnKind) -> np.ndarray:
    """A grouping column's values as level labels: a categorical column's are labels
    already; numbers (float64) are written as ``factor_codes`` writes a numeric column's,
    each distinct value once, and matched to the fitted levels by value (``level_key``),
    so ``308`` and ``308.0`` are the same subject."""
    if kind != "numeric":
        return values
    if len(values) > FEW_ROWS:
        codes, distinct = pd.factorize(values)
    else:
        distinct, codes = np.unique(values, return_inverse=True)
    written = np.array([format_number(float(v)) for v in distinct.tolist()], dtype=object)
    return written[codes.reshape(-1)]


def label_codes(labels: np.ndarray) -> tuple[IntArray, tuple[str, ...]]:
    """Level labels (text, none missing) as codes into the distinct ones in order of first
    appearance: ``factor_codes`` of a categorical column, without pandas."""
    if len(labels) > FEW_ROWS:
        codes, uniques = pd.factorize(labels)
        return codes.astype(np.intp, copy=False), tuple(uniques.tolist())
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(label, len(index)) for label in labels.tolist()),
                        dtype=np.intp, count=len(labels))
    return codes, tuple(index)


# up to this many rows a Python dict labels faster than pandas' factorize, which costs
# tens of microseconds to start
FEW_ROWS = 64


def level_positions(levels: tuple[str, ...], kinds: tuple[ColumnKind, ...]) -> dict[str, int]:
    """Each fitted level's key (``level_key``) and position (the first, for keys written
    twice)."""
    index: dict[str, int] = {}
    for position, level in enumerate(levels):
        index.setdefault(level_key(level, kinds), position)
    return index


@lru_cache(maxsize=256)
def _level_index(levels: tuple[str, ...], kinds: tuple[ColumnKind, ...]) -> dict[str, int]:
    """``level_positions``, kept for the callers that hold no encoder (fitting)."""
    return level_positions(levels, kinds)


def recode(codes: IntArray, labels: tuple[str, ...], levels: tuple[str, ...],
           kinds: tuple[ColumnKind, ...] = (), *,
           known: Mapping[str, int] | None = None) -> tuple[IntArray, list[str]]:
    """Codes into ``labels`` as codes into ``levels`` (-1 where unknown or missing), and the
    labels that occur but are not levels. Labels of numeric columns (``kinds``) match a
    level of the same value however it is written (``level_key``). ``known``: the levels'
    ``level_positions``, if the caller keeps them."""
    if known is None:
        known = _level_index(levels, kinds)
    mapping = [known.get(level_key(label, kinds), -1) for label in labels]
    unknown = [label for label, m in zip(labels, mapping, strict=True) if m < 0]
    if len(codes) <= FEW_ROWS:  # numpy's calls cost more than a pass in Python here
        out = np.fromiter((mapping[c] if c >= 0 else -1 for c in codes.tolist()),
                          dtype=np.intp, count=len(codes))
        return out, unknown
    positions = np.array(mapping, dtype=np.intp)
    recoded = np.where(codes >= 0, positions[np.maximum(codes, 0)] if len(positions) else -1,
                       -1)
    return recoded.astype(np.intp), unknown


def evaluate_variables(encoder: DesignEncoder, frame: pd.DataFrame, labels: list[str], *,
                       params: dict[str, dict[str, Any]], error: type[StatsError],
                       learn: bool) -> dict[str, Value]:
    """Evaluate term factors: level codes for categorical ones, matrices for numeric ones.

    With ``learn`` the evaluator stores ``scale``/``poly`` parameters into ``params``.
    """
    values: dict[str, Value] = {}
    for label in labels:
        variable = encoder.variables[label]
        if variable.categorical:
            values[label] = level_codes(frame, variable, encoder, error)
            continue
        expr = encoder.exprs[label]
        columns = {n: numeric_values(frame[n], encoder.kinds[n], error)
                   for n in dict.fromkeys(expr_columns(expr))}
        matrix, _ = Evaluator(columns, params, learn=learn, error=error).variable(expr)
        values[label] = matrix
    return values


def level_codes(frame: pd.DataFrame, variable: Variable, encoder: DesignEncoder,
                error: type[StatsError]) -> IntArray:
    """Codes of a categorical variable's values; unknown levels are an ``error``."""
    kind = encoder.kinds[variable.column]
    codes, unknown = recode(*factor_codes(frame[variable.column], kind, error), variable.levels,
                            (kind,), known=encoder.level_index(variable.levels, (kind,)))
    if unknown:
        raise error(f"column '{variable.column}' has levels not seen when fitting: "
                    f"{', '.join(sorted(unknown))} (known levels: {', '.join(variable.levels)})")
    if (codes < 0).any():
        raise error(f"column '{variable.column}' has missing values")
    return codes
