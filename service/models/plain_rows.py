"""A JSON prediction body's rows as arrays, for ``Predictor.predict_arrays``: the way a
few rows are predicted without a data frame.

Only rows that the frame's way would read without complaint and without a missing value
are given as arrays; anything else (a null, a column of mixed types, a number too large
for a double) is None here, and the frame's way reads the body and says what is wrong.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from itertools import chain, repeat
from typing import Any

import numpy as np

from service.datasets.rtext import values_as_r_labels

NUMBERS = frozenset({int, float})
TEXT = frozenset({str})
BOOLEANS = frozenset({bool})


def plain_columns(records: Sequence[dict[str, Any]] | None,
                  columns: Mapping[str, Sequence[Any]] | None,
                  categorical: Collection[str],
                  column_types: Mapping[str, frozenset[type]] | None = None,
                  ) -> tuple[dict[str, np.ndarray], int] | None:
    """The rows' columns (float64 numbers; level labels, as R writes them, for the model's
    ``categorical`` columns) and their number, or None when the frame's way must read them.
    ``column_types``: the Python types in each of ``columns``, where already known.

    A column of text or booleans that the model reads as numbers is left out, so the
    arrays' way finds it absent and leaves the rows to the frame's way, which parses or
    refuses it."""
    table = _columns_of(records, columns)
    if table is None:
        return None
    lengths = {len(values) for values in table.values()}
    if len(lengths) != 1 or 0 in lengths:
        return None
    declared = set(categorical)
    arrays: dict[str, np.ndarray] = {}
    known = column_types if columns is not None and column_types is not None else {}
    for name, values in table.items():
        kinds = known.get(name)
        if kinds is None:
            kinds = frozenset(map(type, values))
        if name in declared:
            if kinds <= TEXT:  # labels as they are, as values_as_r_labels keeps text
                arrays[name] = np.array(values, dtype=object)
                continue
            labels = values_as_r_labels(values)
            if None in labels:
                return None
            arrays[name] = np.array(labels, dtype=object)
            continue
        if kinds <= NUMBERS:
            try:
                numbers = np.array(values, dtype=np.float64)
            except OverflowError:
                return None
            if not np.isfinite(numbers).all():
                return None
            arrays[name] = numbers
        elif not (kinds <= TEXT or kinds <= BOOLEANS):
            return None
    return arrays, lengths.pop()


def _columns_of(records: Sequence[dict[str, Any]] | None,
                columns: Mapping[str, Sequence[Any]] | None
                ) -> Mapping[str, Sequence[Any]] | None:
    if columns is not None:
        return columns
    if not records:
        return None
    # as the frame's way reads them: every key of any record, None where a record lacks it
    names = dict.fromkeys(chain.from_iterable(records))
    return {name: list(map(dict.get, records, repeat(name))) for name in names}
