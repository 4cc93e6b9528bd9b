"""R's contrast matrices (``contr.treatment``, ``contr.sum``, ``contr.helmert``,
``contr.poly``, ``contr.SAS``) and the column-name suffixes ``model.matrix`` gives them.

A factor with k levels coded by contrasts contributes k - 1 columns: row ``i`` of the
k × (k - 1) matrix is what a row at level ``i`` gets. ``model.matrix`` names the columns
after the matrix's column names when it has them (treatment and SAS: the levels they
stand for; poly: ``.L``, ``.Q``, ``.C``, ``^4``...) and ``1``..``k-1`` otherwise (sum,
helmert), appended to the factor's name: ``recipeB``, ``recipe1``, ``temperature.L``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from service.stats.design.types import FloatArray
from service.stats.errors import DesignError

TREATMENT = "contr.treatment"
#: The codings a factor may be given, by R's function names.
CODINGS: tuple[str, ...] = (TREATMENT, "contr.sum", "contr.helmert", "contr.poly", "contr.SAS")
#: R's contr.poly refuses more: "orthogonal polynomials cannot be represented accurately
#: enough for 95 degrees of freedom".
MAX_POLY_LEVELS = 95


def contrast_matrix(coding: str, levels: Sequence[str]) -> tuple[FloatArray, list[str]]:
    """The contrast matrix of a factor and its columns' name suffixes.

    Parameters
    ----------
    coding
        One of ``CODINGS``.
    levels
        The factor's levels in order (at least 2).

    Returns
    -------
    tuple
        The k × (k - 1) matrix (rows: levels) and the k - 1 suffixes.

    Raises
    ------
    DesignError
        An unknown coding, or contr.poly of more than 95 levels.
    """
    check_coding(coding)
    k = len(levels)
    if coding == TREATMENT:
        return np.eye(k)[:, 1:], list(levels[1:])
    if coding == "contr.SAS":  # treatment with the last level as the reference
        return np.eye(k)[:, :-1], list(levels[:-1])
    if coding == "contr.sum":
        return _sum(k), [str(j + 1) for j in range(k - 1)]
    if coding == "contr.poly":
        if k > MAX_POLY_LEVELS:
            raise DesignError(f"contr.poly needs at most {MAX_POLY_LEVELS} levels (R: "
                              "orthogonal polynomials cannot be represented accurately "
                              f"enough); this factor has {k}")
        return _poly(k), poly_suffixes(k)
    return _helmert(k), [str(j + 1) for j in range(k - 1)]


def _sum(k: int) -> FloatArray:
    """contr.sum: the first k - 1 levels against the mean; the last level is -1 everywhere."""
    matrix = np.vstack([np.eye(k - 1), -np.ones((1, k - 1))])
    return np.asarray(matrix)


def _helmert(k: int) -> FloatArray:
    """contr.helmert: column j compares level j + 1 with the mean of the levels before it
    (-1 for those, j for it, 0 after)."""
    matrix = np.zeros((k, k - 1))
    for j in range(k - 1):
        matrix[: j + 1, j] = -1.0
        matrix[j + 1, j] = float(j + 1)
    return matrix


@lru_cache(maxsize=128)
def _poly_cached(k: int) -> FloatArray:
    # R's make.poly: the columns of Q R's diagonal part, i.e. each power of the centred
    # scores 1..k minus its projection on the lower powers (Gram-Schmidt), normalized;
    # the constant column is left out. QR's signs are undone by diag(R).
    scores = np.arange(1, k + 1, dtype=np.float64)
    centred = scores - scores.mean()
    powers = np.vander(centred, k, increasing=True)
    q, r = np.linalg.qr(powers)
    raw = q * np.diag(r)[None, :]
    normalized = raw / np.sqrt((raw * raw).sum(axis=0))[None, :]
    out = np.ascontiguousarray(normalized[:, 1:])
    out.setflags(write=False)
    return out


def _poly(k: int) -> FloatArray:
    return np.array(_poly_cached(k))


def poly_suffixes(k: int) -> list[str]:
    """contr.poly's column names: ``.L``, ``.Q``, ``.C``, then ``^4``, ``^5``..."""
    names = [".L", ".Q", ".C"] + [f"^{d}" for d in range(4, k)]
    return names[: k - 1]


def check_coding(coding: str) -> None:
    """Refuse a coding that is not one of ``CODINGS``."""
    if coding not in CODINGS:
        raise DesignError(f"unknown contrasts {coding!r}; use one of {', '.join(CODINGS)}")
