"""Prior weights (the ``weights`` argument of R's ``lm`` and ``lmer``), as R takes them.

Row i's residual variance is σ² / wᵢ. A missing weight in a row the fit would use is
refused, naming the rows (lm.wfit's "missing or negative weights not allowed"; R's
``model.frame`` would drop the row with ``na.omit`` first and fit the rest silently, but a
weight is a statement about the row, not a measurement of it, and a row without one is
more likely a mistake than a row to leave out); a negative weight is refused too (lme4:
``all(weights >= 0)``). A
zero weight takes a row out of lm's fit, residual df and likelihood, which is what is done
here for every model: lme4 keeps such rows and reports a log-likelihood of -Inf.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from service.stats.design.types import FloatArray, RandomBlock
from service.stats.design.values import ColumnKind, numeric_values
from service.stats.errors import ArgumentError, DesignError
from service.stats.rows import row_numbers


def check_weights_column(column: str | None, columns: Mapping[str, str]) -> None:
    """Refuse a weights column the dataset does not have, or one that is not numeric."""
    if column is None:
        return
    if column not in columns:
        raise ArgumentError({"weights": f"the dataset has no column '{column}'"})
    if columns[column] != "numeric":
        raise ArgumentError({"weights": f"column '{column}' is {columns[column]}; prior "
                                        "weights are numbers"})


def refuse_missing_weights(data: pd.DataFrame, used: list[str], column: str) -> None:
    """Refuse a missing weight in a row whose formula columns are complete (a row with
    another value missing is left out anyway, as R's na.omit leaves it)."""
    complete = (~data[used].isna().any(axis=1)).to_numpy() if used \
        else np.ones(len(data), bool)
    bad = np.flatnonzero(complete & data[column].isna().to_numpy())
    if len(bad):
        raise ArgumentError({"weights": (
            f"missing weights not allowed: column '{column}' has no value in "
            f"{row_numbers(bad)}; give each row a weight (or leave the row out)")})


def weight_values(frame: pd.DataFrame, column: str, kind: ColumnKind,
                  rows: np.ndarray) -> FloatArray:
    """The weights of the rows kept (``rows``: their positions in the data, for messages).

    Raises
    ------
    ArgumentError
        Naming ``weights``, the column and the rows, for negative or infinite weights.
    """
    values = numeric_values(frame[column], kind, DesignError)
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if len(bad):
        raise ArgumentError({"weights": (
            f"negative weights not allowed (as R): column '{column}' has negative or "
            f"infinite values in {row_numbers(rows[bad])}")})
    return values


def scale_rows(weights: FloatArray, y: FloatArray, X: FloatArray,
               blocks: tuple[RandomBlock, ...]) -> tuple[FloatArray, FloatArray,
                                                         tuple[RandomBlock, ...]]:
    """y, X and the random covariates times √w: the weighted model as an unweighted one."""
    root = np.sqrt(weights)
    scaled = tuple(RandomBlock(group=b.group, terms=b.terms, levels=b.levels, codes=b.codes,
                               covariates=np.ascontiguousarray(b.covariates * root[:, None]))
                   for b in blocks)
    return y * root, np.ascontiguousarray(X * root[:, None]), scaled
