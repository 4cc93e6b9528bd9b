"""Data columns as the design sees them: their kind, numeric values and R-style level labels.

Levels are labelled as R's ``as.character`` would print them (``1`` not ``1.0``, ``TRUE``):
an integer column (R reads a CSV column of whole numbers as integer) in full, ``100000``;
doubles to 15 significant digits, fixed or scientific, whichever is narrower, ``1e+05``,
``0.1``. New data finds a numeric level by its value (``level_key``), so the number 1e5
sent as 100000, 1e5 or "1e+05" is the same level, whichever way the fit wrote it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from service.stats.design.types import FloatArray, IntArray
from service.stats.errors import StatsError
from service.stats.formula.syntax import r_number

ColumnKind = Literal["numeric", "categorical", "boolean"]
KINDS: tuple[ColumnKind, ...] = ("numeric", "categorical", "boolean")

_TRUE = frozenset({"TRUE", "True", "true", "T"})
_FALSE = frozenset({"FALSE", "False", "false", "F"})


def column_kind(series: pd.Series) -> ColumnKind:
    """The kind of a column: booleans and numbers by dtype, everything else categorical."""
    if ptypes.is_bool_dtype(series.dtype):
        return "boolean"
    if ptypes.is_numeric_dtype(series.dtype):
        return "numeric"
    values = series.dropna()
    if len(values) and all(isinstance(v, bool | np.bool_) for v in values):
        return "boolean"
    return "categorical"


def infer_kinds(frame: pd.DataFrame) -> dict[str, ColumnKind]:
    """The kind of every column of a frame, keyed by column name."""
    return {str(name): column_kind(frame[name]) for name in frame.columns}


class ColumnKinds(Mapping[str, ColumnKind]):
    """The kinds of a frame's columns, each found when first asked for: a design reads a
    few columns of what may be a wide dataset, and checks the names of the others only."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame
        self._names = {str(name): name for name in frame.columns}
        self._kinds: dict[str, ColumnKind] = {}

    def __getitem__(self, name: str) -> ColumnKind:
        kind = self._kinds.get(name)
        if kind is None:
            kind = self._kinds[name] = column_kind(self._frame[self._names[name]])
        return kind

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def format_number(value: float) -> str:
    """A number as R's ``as.character`` writes it: 15 significant digits, fixed notation
    unless scientific is narrower (``1``, ``0.1``, ``1e+05``, ``1e-04``, ``100000.5``)."""
    return r_number(float(value))


#: R's integer vectors hold 32-bit integers.
R_INTEGER_MAX = 2**31 - 1


def is_r_integer(series: pd.Series) -> bool:
    """Whether R would hold this numeric column as an integer vector: an integer dtype whose
    values fit R's 32-bit integers (``read.csv`` reads whole numbers so)."""
    if not ptypes.is_integer_dtype(series.dtype):
        return False
    values = series.dropna()
    return not len(values) or int(np.abs(values.to_numpy(dtype=np.float64)).max()) <= \
        R_INTEGER_MAX


def factor_codes(series: pd.Series, kind: ColumnKind,
                 error: type[StatsError]) -> tuple[IntArray, tuple[str, ...]]:
    """A column as codes into its distinct R-style labels (code -1 where missing).

    Only the distinct values are labelled, so this stays fast on large frames; values that
    print alike (1 and "1") share a label.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if len(uniques) == 0:  # every value missing: no labels, every code -1
        return np.full(len(series), -1, dtype=np.intp), ()
    integer = kind == "numeric" and is_r_integer(series)
    labels = [_label(value, kind, str(series.name), error, integer) for value in list(uniques)]
    label_codes, distinct = pd.factorize(np.asarray(labels, dtype=object))
    merged = np.where(codes >= 0, label_codes[np.maximum(codes, 0)], -1).astype(np.intp)
    return merged, tuple(str(x) for x in distinct)


def level_labels(series: pd.Series, kind: ColumnKind,
                 error: type[StatsError]) -> np.ndarray:
    """R-style level labels of a column (object array, None where the value is missing)."""
    codes, labels = factor_codes(series, kind, error)
    table = np.array([*labels, None], dtype=object)
    return table[codes]  # code -1 picks the trailing None


def _label(value: object, kind: ColumnKind, name: str, error: type[StatsError],
           integer: bool = False) -> str:
    if kind == "boolean":
        return _boolean_label(value, name, error)
    if kind == "numeric":
        if integer and isinstance(value, int | np.integer):
            return str(int(value))  # R's as.character of an integer: in full
        return _numeric_label(value, name, error)
    return str(value)


def level_key(label: str, kinds: tuple[ColumnKind, ...]) -> str:
    """What identifies a level when new data is matched to the fitted levels: numbers by
    their value (``100000``, ``1e5`` and ``1e+05`` are one level), anything else by its
    text. ``kinds`` are the kinds of the columns whose values ``label`` joins with ``:``."""
    if "numeric" not in kinds:
        return label
    parts = label.split(":") if len(kinds) > 1 else [label]
    if len(parts) != len(kinds):
        return label
    return ":".join(_number_key(part) if kind == "numeric" else part
                    for part, kind in zip(parts, kinds, strict=True))


def _number_key(text: str) -> str:
    try:
        return format_number(float(text))
    except ValueError:
        return text


def _boolean_label(value: object, name: str, error: type[StatsError]) -> str:
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    text = str(value)
    if text in _TRUE:
        return "TRUE"
    if text in _FALSE:
        return "FALSE"
    if isinstance(value, int | float | np.number) and float(value) in (0.0, 1.0):
        return "TRUE" if float(value) else "FALSE"
    raise error(f"column '{name}' must be boolean (TRUE/FALSE); got {text!r}")


def _numeric_label(value: object, name: str, error: type[StatsError]) -> str:
    if isinstance(value, str):
        try:
            return format_number(float(value))
        except ValueError:
            return value
    if isinstance(value, bool | np.bool_):
        return format_number(float(value))
    if isinstance(value, int | float | np.number):
        return format_number(float(value))
    raise error(f"column '{name}' holds a value that is neither a number nor text: {value!r}")


def sort_levels(labels: set[str] | list[str], kind: ColumnKind) -> tuple[str, ...]:
    """Levels in R's order: numbers numerically, booleans FALSE < TRUE, text as sorted strings."""
    unique = set(labels)
    if kind == "numeric":
        return tuple(sorted(unique, key=_numeric_key))
    return tuple(sorted(unique))


def _numeric_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def numeric_values(series: pd.Series, kind: ColumnKind, error: type[StatsError]) -> FloatArray:
    """A column as float64 (booleans as 0/1); text that is not a number is an ``error``."""
    name = str(series.name)
    if kind == "categorical":
        raise error(f"column '{name}' is categorical; a number is needed here")
    if kind == "boolean":
        labels = level_labels(series, "boolean", error)
        return np.array([np.nan if v is None else float(v == "TRUE") for v in labels])
    if pd.api.types.is_bool_dtype(series.dtype) and series.notna().any():
        # new data for a numeric column: true/false is a type mistake, not the numbers 1/0
        raise error(f"column '{name}' must be numeric, but it holds true/false values")
    try:
        return np.asarray(pd.to_numeric(series, errors="raise"), dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise error(f"column '{name}' must be numeric: {exc}") from None
