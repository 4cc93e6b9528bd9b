"""Values as R's ``as.character`` writes them: the labels of a column declared categorical.

R turns a column into a factor by its values' text, so a factor's levels are what
``as.character`` prints: integers in full (``100000``), doubles to 15 significant digits in
fixed or scientific notation, whichever is narrower (``0.1``, ``123456``, ``1e+05``,
``1.5e-07``; R's ``formatReal``, the design's ``format_number``), logicals as
``TRUE``/``FALSE``. (A CSV column declared categorical keeps the text written in the file,
as ``read.csv(colClasses = "factor")`` does: nothing here applies to it.)
``tests/data/r/declared_types.R`` produced the reference labels the tests compare with.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from service.stats.design.values import format_number

# R's integer vectors hold 32-bit integers (NA is the most negative one)
INT_MAX = 2**31 - 1
# what R's type.convert reads as logical (R 4.2: not true/True/false/False)
TRUE_TEXT = frozenset({"TRUE", "T"})
FALSE_TEXT = frozenset({"FALSE", "F"})


def double_text(value: float) -> str:
    """A double as R's ``as.character`` writes it (the design's labels of numbers)."""
    return format_number(value)


def integer_text(value: int) -> str:
    """An integer as R prints an integer vector's element (in full)."""
    return str(int(value))


def number_text(value: float | int, integer: bool) -> str:
    """A number as R prints it, as an element of an integer vector or of a double one."""
    return integer_text(int(value)) if integer else double_text(float(value))


def fits_r_integer(values: Iterable[float | int]) -> bool:
    """Whether whole numbers all fit R's 32-bit integer type."""
    return all(abs(int(v)) <= INT_MAX for v in values)


def series_as_r_labels(series: pd.Series) -> pd.Series:
    """A typed column's values as R's ``as.character`` writes them (None where missing).

    Booleans are ``TRUE``/``FALSE``; an integer column (pandas' integer dtypes, or Python
    integers) whose values all fit R's integer type is written in full, other numbers as
    doubles; text stays as it is.
    """
    if pd.api.types.is_bool_dtype(series.dtype):
        labels = [None if _missing(v) else ("TRUE" if v else "FALSE") for v in series.tolist()]
    elif pd.api.types.is_numeric_dtype(series.dtype):
        integer = (pd.api.types.is_integer_dtype(series.dtype)
                   and fits_r_integer(series.dropna().tolist()))
        labels = [None if _missing(v) else number_text(v, integer) for v in series.tolist()]
    else:
        labels = values_as_r_labels(series.tolist())
    return pd.Series(labels, index=series.index, name=series.name, dtype=object)


TEXT_OR_NONE = frozenset({str, type(None)})


def values_as_r_labels(values: Sequence[object]) -> list[str | None]:
    """Values of one column (JSON scalars, Python objects) as R would write them.

    As jsonlite and arrow read them: the numbers are an integer vector when they are all
    whole numbers of R's integer range, else a double one (so ``100000`` is ``100000``
    beside other integers and ``1e+05`` beside ``2.5``); booleans are ``TRUE``/``FALSE``;
    text is kept.
    """
    if set(map(type, values)) <= TEXT_OR_NONE:  # text and nulls alone: kept as they are
        return list(values)  # type: ignore[arg-type]
    numbers = [v for v in values if _is_number(v) and not _missing(v)]
    integer = (all(isinstance(v, int | np.integer) for v in numbers)
               and fits_r_integer(numbers))  # type: ignore[arg-type]
    out: list[str | None] = []
    for value in values:
        if _missing(value):
            out.append(None)
        elif isinstance(value, bool | np.bool_):
            out.append("TRUE" if value else "FALSE")
        elif _is_number(value):
            out.append(number_text(value, integer))  # type: ignore[arg-type]
        else:
            out.append(str(value))
    return out


def _is_number(value: object) -> bool:
    return (isinstance(value, int | float | np.integer | np.floating)
            and not isinstance(value, bool | np.bool_))


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
