"""Cross-products for refits that change only the response or the fixed-effects columns.

The random-effects structure (Z'Z blocks, their sparsity, Λθ's pattern) does not depend
on y or X, so a refit with a new response (a bootstrap's simulated y) or with one
coefficient held fixed (a profile) reuses it and rebuilds only the blocks that involve
[X y]: Z'[X y] and [X y]'[X y]. For a new response that is one pass over the rows; for a
linear recombination of the columns [X y] A it is a few small matrix products.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from service.stats.design.types import Design, FloatArray
from service.stats.lmm.structure import CrossProducts, sparse_z


def combine_columns(cp: CrossProducts, a: FloatArray) -> CrossProducts:
    """The cross-products of the design whose fixed columns and response are [X y] A.

    Parameters
    ----------
    cp
        The design's cross-products ([X y] has p + 1 columns).
    a
        (p + 1) × (k + 1): the first k columns of [X y] A are the new fixed-effects
        columns, the last is the new response.

    Returns
    -------
    CrossProducts
        With ``n_fixed = k``; everything that does not involve [X y] is shared.
    """
    return replace(
        cp, n_fixed=a.shape[1] - 1,
        zxy_first=np.ascontiguousarray(np.einsum("aml,mk->akl", cp.zxy_first, a)),
        zxy_rest=np.asarray(cp.zxy_rest @ a), xy_xy=np.asarray(a.T @ cp.xy_xy @ a))


class NewResponses:
    """Cross-products of one design with any number of new responses.

    Parameters
    ----------
    cp
        The cross-products of ``design``.
    design
        The design (its X and random-effects blocks; its y is not used).
    """

    def __init__(self, cp: CrossProducts, design: Design) -> None:
        self._cp = cp
        self._x = np.asarray(design.X, dtype=np.float64)
        first = cp.terms[0].block
        self._first_codes = first.codes
        self._first_covariates = first.covariates
        self._levels = first.n_levels
        rest = [term.block for term in cp.terms[1:]]
        self._z_rest_t = (sp.hstack([sparse_z(b) for b in rest], format="csr").T.tocsr()
                          if rest else None)

    def cross_products(self, y: FloatArray) -> CrossProducts:
        """The cross-products of the design with response ``y`` (n values)."""
        cp = self._cp
        p = cp.n_fixed
        zxy_first = cp.zxy_first.copy()
        for a in range(zxy_first.shape[0]):
            zxy_first[a, p] = np.bincount(self._first_codes,
                                          weights=self._first_covariates[:, a] * y,
                                          minlength=self._levels)
        zxy_rest = cp.zxy_rest.copy()
        if self._z_rest_t is not None:
            zxy_rest[:, p] = self._z_rest_t @ y
        xy_xy = cp.xy_xy.copy()
        xty = self._x.T @ y
        xy_xy[:p, p] = xty
        xy_xy[p, :p] = xty
        xy_xy[p, p] = float(y @ y)
        return replace(cp, zxy_first=zxy_first, zxy_rest=zxy_rest, xy_xy=xy_xy)
