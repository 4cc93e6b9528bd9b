"""Aliased (linearly dependent) fixed-effect columns, found as R's ``qr(X, tol = 1e-7)`` does.

LINPACK's ``dqrdc2`` (used by ``lm`` and by lme4's ``chkRank.drop.cols``) walks the columns
in order and moves a column to the end when what remains of it, after removing its
projection on the columns kept so far, is below ``tol`` times its original norm. So the
columns dropped are the later members of each dependent set. An unpivoted Householder QR
gives the same remainders (``|R[j, j]|``), since an aliased column adds nothing to the span;
the check is repeated without the dropped columns until none is found, so the kept columns
pass the test against each other alone.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from service.stats.design.types import FloatArray

RANK_TOLERANCE = 1e-7


def aliased_columns(X: FloatArray, tol: float = RANK_TOLERANCE) -> list[int]:
    """Indices of the columns of ``X`` that are (numerically) combinations of earlier ones."""
    norms = np.linalg.norm(X, axis=0)
    kept = [j for j in range(X.shape[1]) if norms[j] > 0.0]
    while kept:
        # "raw" keeps LAPACK's compact output: R's diagonal without forming an n × p R.
        (compact, _), _ = scipy.linalg.qr(X[:, kept], mode="raw", check_finite=False)
        remainders = np.abs(np.diag(compact))
        if len(remainders) < len(kept):  # fewer rows than columns: the rest are aliased
            remainders = np.concatenate([remainders, np.zeros(len(kept) - len(remainders))])
        small = [i for i, j in enumerate(kept) if remainders[i] < tol * norms[j]]
        if not small:
            break
        drop = set(small)
        kept = [j for i, j in enumerate(kept) if i not in drop]
    return sorted(set(range(X.shape[1])) - set(kept))


def rank_message(names: list[str]) -> str:
    """lme4's message for dropped columns, naming them."""
    noun = "column" if len(names) == 1 else "columns"
    return (f"fixed-effect model matrix is rank deficient so dropping {len(names)} {noun}: "
            + ", ".join(names))
