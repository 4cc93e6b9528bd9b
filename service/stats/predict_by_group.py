"""Per-group models' predictions (lme4's ``lmList``): each row by its own level's
regression, the rows of each level predicted together by that level's predictor."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from service.stats.design.types import FloatArray
from service.stats.errors import PredictionError
from service.stats.lmlist import split_rows
from service.stats.prediction_intervals import IntervalTable
from service.stats.rows import row_numbers

_T = TypeVar("_T")


class GroupedPredictor(Protocol):
    """A per-group model's compiled predictor: its grouping columns and one predictor
    per fitted level."""

    @property
    def by(self) -> tuple[str, ...]: ...
    @property
    def groups(self) -> Mapping[str, Any]: ...


def by_group(predictor: GroupedPredictor, data: pd.DataFrame,
             each: Callable[[Any, pd.DataFrame], _T], empty: Callable[[int], _T],
             put: Callable[[_T, np.ndarray, _T], None]) -> _T:
    """Each row predicted by its own level's regression, as R's ``predict`` on an lmList:
    ``each`` predicts one level's rows, ``put`` places them into ``empty(n)``.

    Separate regressions have no population-level model, so a level without a fit (unseen,
    or not fitted for lack of rows) is an error whatever ``new_levels`` says.
    """
    by = predictor.by
    label = ":".join(by)
    present = [c for c in by if c in data.columns]
    no_group: np.ndarray = (np.flatnonzero(data[present].isna().any(axis=1).to_numpy())
                            if present else np.array([], dtype=np.intp))
    if len(no_group):
        # R's predict on an lmList: "nonexistent group in 'newdata'"
        raise PredictionError(
            f"{len(no_group)} row(s) have no value for {label}: {row_numbers(no_group)}. A "
            "per-group model predicts each row by its own group's regression, and has no "
            "population-level regression for a row without a group")
    groups, _ = split_rows(by, data)
    fitted = predictor.groups
    resolved = {g.level: _fitted_level(g.level, fitted) for g in groups}
    unknown = [level for level, found in resolved.items() if found is None]
    if unknown:
        raise PredictionError(f"no regression was fitted for {label} level(s) "
                              f"{', '.join(unknown[:20])}; levels with a fit: "
                              f"{', '.join(list(fitted)[:20])}")
    out = empty(len(data))
    for group in groups:
        part = data.iloc[group.rows].reset_index(drop=True)
        level = resolved[group.level]
        assert level is not None  # unknown levels were refused above
        put(out, group.rows, each(fitted[level], part))
    return out


def put_values(out: FloatArray, rows: np.ndarray, values: FloatArray) -> None:
    out[rows] = values


def empty_table(n: int) -> IntervalTable:
    return IntervalTable(*(np.empty(n) for _ in range(4)))


def put_table(out: IntervalTable, rows: np.ndarray, part: IntervalTable) -> None:
    for name in ("fit", "se_fit", "lower", "upper"):
        getattr(out, name)[rows] = getattr(part, name)


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _fitted_level(level: str, fitted: Mapping[str, Any]) -> str | None:
    """The fitted level that ``level`` (a label of new data) names, or None.

    New data may write a numeric group another way than the data it was fitted on
    (100000.0 or 1e5 for an integer column's 100000): numeric parts are matched by value.
    """
    if level in fitted:
        return level
    parts = level.split(":")
    values = [_as_number(p) for p in parts]
    if any(v is None for v in values):
        return None
    for candidate in fitted:
        other = candidate.split(":")
        if len(other) == len(parts) and all(
                _as_number(o) == v for o, v in zip(other, values, strict=True)):
            return str(candidate)
    return None
