"""Aliased (linearly dependent) fixed-effect columns, found as R's ``qr(X, tol = 1e-7)`` does.

LINPACK's ``dqrdc2`` (used by ``lm`` and by lme4's ``chkRank.drop.cols``) walks the columns
in order and moves a column to the end when what remains of it, after removing its
projection on the columns kept so far, is below ``tol`` times its original norm. So the
columns dropped are the later members of each dependent set, as here.
"""

from __future__ import annotations

import numpy as np

from service.stats.design.types import FloatArray

RANK_TOLERANCE = 1e-7


def aliased_columns(X: FloatArray, tol: float = RANK_TOLERANCE) -> list[int]:
    """Indices of the columns of ``X`` that are (numerically) combinations of earlier ones."""
    n, p = X.shape
    basis = np.empty((n, p))
    rank = 0
    aliased: list[int] = []
    for j in range(p):
        column = X[:, j].astype(np.float64)
        norm = float(np.linalg.norm(column))
        residual = column.copy()
        # Two passes of Gram-Schmidt keep the residual orthogonal to working precision.
        for _ in range(2):
            residual -= basis[:, :rank] @ (basis[:, :rank].T @ residual)
        remaining = float(np.linalg.norm(residual))
        if norm == 0.0 or remaining < tol * norm:
            aliased.append(j)
            continue
        basis[:, rank] = residual / remaining
        rank += 1
    return aliased


def rank_message(names: list[str]) -> str:
    """lme4's message for dropped columns, naming them."""
    noun = "column" if len(names) == 1 else "columns"
    return (f"fixed-effect model matrix is rank deficient so dropping {len(names)} {noun}: "
            + ", ".join(names))
