"""Step one of a fit (lme4's ``mkLmerDevfun`` preparation): the cross-products of the design.

Everything an evaluation of the objective needs is computed here once, so that no
evaluation touches the n rows again (MixedModels.jl's scheme). The random-effects terms
are put in lme4's order, by decreasing number of levels, which is also the order of θ.

The first term (the one with most levels) is kept block diagonal: ``ztz_first`` holds its
``l × q × q`` diagonal blocks of Z'Z. All other terms together form the "rest", small
enough to be handled densely after a Schur complement; their cross-product with the first
term is a sparse matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from service.stats.design.types import Design, FloatArray, IntArray, RandomBlock
from service.stats.errors import FitError


@dataclass(frozen=True, eq=False)
class TermLayout:
    """Where one random-effects term sits in θ and in the columns of Z.

    ``lower_rows``/``lower_cols`` index T's lower triangle column by column, which is the
    order of this term's entries in θ (lme4's convention).
    """

    block: RandomBlock
    theta_start: int
    column_start: int  # offset in the "rest" columns; 0 for the first term
    lower_rows: IntArray
    lower_cols: IntArray

    @property
    def q(self) -> int:
        return self.block.q

    @property
    def n_levels(self) -> int:
        return self.block.n_levels

    @property
    def n_theta(self) -> int:
        return len(self.lower_rows)

    @property
    def n_columns(self) -> int:
        return self.q * self.n_levels

    def diagonal_theta(self) -> IntArray:
        """Positions in θ of the diagonal elements of T (bounded below by 0)."""
        on_diagonal = np.flatnonzero(self.lower_rows == self.lower_cols)
        return (self.theta_start + on_diagonal).astype(np.intp)

    def relative_factor(self, theta: FloatArray) -> FloatArray:
        """T, the q × q lower-triangular relative covariance factor of this term."""
        t = np.zeros((self.q, self.q))
        start = self.theta_start
        t[self.lower_rows, self.lower_cols] = theta[start:start + self.n_theta]
        return t


@dataclass(frozen=True, eq=False)
class CrossProducts:
    """Z'Z, Z'X, X'X, Z'y, X'y and y'y, blocked for the factorization.

    ``xy`` denotes the columns of X followed by y, as MixedModels.jl appends y to X.
    """

    terms: tuple[TermLayout, ...]
    n_obs: int
    n_fixed: int
    ztz_first: FloatArray  # (q1, q1, l1) diagonal blocks of Z1'Z1, level last
    zxy_first: FloatArray  # (q1, p + 1, l1) per-level blocks of Z1'[X y], level last
    ztz_rest: FloatArray  # (m, m) dense Zr'Zr of the other terms
    zrest_zfirst: sp.csr_matrix  # (m, l1 q1) sparse Zr'Z1
    zrest_zfirst_rows: IntArray  # row of each stored entry of zrest_zfirst
    dense_rows_start: int  # rest rows from here on couple with most first-term levels
    zxy_rest: FloatArray  # (m, p + 1) Zr'[X y]
    xy_xy: FloatArray  # (p + 1, p + 1) [X y]'[X y]
    lambda_rest_indptr: IntArray  # CSR pattern of the rest's block of Λθ ...
    lambda_rest_indices: IntArray
    lambda_rest_theta: IntArray  # ... and the θ position of each stored entry (lme4's Lind)

    @property
    def n_theta(self) -> int:
        return sum(t.n_theta for t in self.terms)

    @property
    def n_rest(self) -> int:
        return int(self.ztz_rest.shape[0])

    @property
    def rest_is_diagonal(self) -> bool:
        """Whether the rest's block of Λθ is diagonal (every other term has q = 1)."""
        return all(t.q == 1 for t in self.terms[1:])

    def lower_bounds(self) -> FloatArray:
        """0 for diagonal elements of each T, -inf for the others."""
        lower = np.full(self.n_theta, -np.inf)
        for term in self.terms:
            lower[term.diagonal_theta()] = 0.0
        return lower

    def initial_theta(self) -> FloatArray:
        """lme4's start: T = identity for every term."""
        start = np.zeros(self.n_theta)
        for term in self.terms:
            start[term.diagonal_theta()] = 1.0
        return start


def lme4_order(blocks: tuple[RandomBlock, ...]) -> tuple[RandomBlock, ...]:
    """lme4's ``mkReTrms`` order: formula order when the numbers of levels never increase
    along it; otherwise ``rev(order(nl))``, decreasing number of levels with ties in
    reverse formula order."""
    levels = [b.n_levels for b in blocks]
    if all(later <= earlier for earlier, later in zip(levels, levels[1:], strict=False)):
        return blocks
    ranked = sorted(range(len(blocks)), key=lambda i: levels[i])  # R's order is stable
    return tuple(blocks[i] for i in reversed(ranked))


def _lower_triangle_by_column(q: int) -> tuple[IntArray, IntArray]:
    cols, rows = np.triu_indices(q)  # (col, row) pairs of the transposed upper triangle
    return rows.astype(np.intp), cols.astype(np.intp)


def _layout(blocks: tuple[RandomBlock, ...]) -> tuple[TermLayout, ...]:
    layouts = []
    theta_start = 0
    column_start = 0
    for index, block in enumerate(blocks):
        rows, cols = _lower_triangle_by_column(block.q)
        layouts.append(TermLayout(block, theta_start, column_start, rows, cols))
        theta_start += len(rows)
        if index > 0:
            column_start += block.q * block.n_levels
    return tuple(layouts)


def sparse_z(block: RandomBlock) -> sp.csr_matrix:
    """Z for one term as an n × (l q) sparse matrix, level-major columns."""
    n, q = block.covariates.shape
    rows = np.repeat(np.arange(n), q)
    cols = (block.codes[:, None] * q + np.arange(q)[None, :]).ravel()
    return sp.csr_matrix((block.covariates.ravel(), (rows, cols)), shape=(n, q * block.n_levels))


def _per_level_products(block: RandomBlock, right: FloatArray) -> FloatArray:
    """Σ over the rows of each level of covariates[r]ᵀ right[r]: (q, k, l) blocks.

    The level is the last (contiguous) axis so that per-level operations in the
    factorization are vector operations over levels.
    """
    codes = block.codes
    levels = block.n_levels
    out = np.empty((block.q, right.shape[1], levels))
    for a in range(block.q):
        for k in range(right.shape[1]):
            out[a, k] = np.bincount(codes, weights=block.covariates[:, a] * right[:, k],
                                    minlength=levels)
    return out


def _lambda_rest_pattern(terms: tuple[TermLayout, ...]) -> tuple[IntArray, IntArray, IntArray]:
    """CSR pattern of blockdiag(I_l ⊗ T) over the rest's terms and each entry's θ index."""
    indptr = [0]
    indices: list[IntArray] = []
    theta_index: list[IntArray] = []
    for term in terms[1:]:
        q = term.q
        position = np.full((q, q), -1, dtype=np.intp)
        position[term.lower_rows, term.lower_cols] = term.theta_start + np.arange(term.n_theta)
        for level in range(term.n_levels):
            base = term.column_start + level * q
            for a in range(q):
                cols = np.arange(a + 1)  # T is lower triangular: row a has columns 0..a
                indices.append(base + cols)
                theta_index.append(position[a, cols])
                indptr.append(indptr[-1] + a + 1)
    if not indices:
        empty = np.zeros(0, dtype=np.intp)
        return np.zeros(1, dtype=np.intp), empty, empty
    return (np.asarray(indptr, dtype=np.intp), np.concatenate(indices).astype(np.intp),
            np.concatenate(theta_index).astype(np.intp))


# The terms after the first are factored as one dense matrix of this order at most
# (8 bytes × 10,000² = 800 MB per copy); more needs a sparse Cholesky.
MAX_DENSE_COLUMNS = 10_000

# Rest rows of Zr'Z1 denser than this are multiplied as dense arrays: for them a sparse
# product costs more per row (pairs of entries × ~20 ns) than a pass over all of Zr'Z1.
_DENSE_ROW_DENSITY = 0.05


def _dense_rows_start(terms: tuple[TermLayout, ...], zrest_zfirst: sp.csr_matrix) -> int:
    """Start of the trailing run of rest terms whose rows of Zr'Z1 are dense.

    Terms come in decreasing number of levels, so the few-level ones (a department, a
    site) that meet most levels of the first term are at the end.
    """
    start = zrest_zfirst.shape[0]
    counts = np.diff(zrest_zfirst.indptr)
    for term in reversed(terms[1:]):
        rows = counts[term.column_start:term.column_start + term.n_columns]
        if rows.mean() < _DENSE_ROW_DENSITY * zrest_zfirst.shape[1]:
            break
        start = term.column_start
    return start


def cross_products(design: Design) -> CrossProducts:
    """Precompute the blocked cross-products of a mixed-model design.

    Parameters
    ----------
    design
        A design with a response and at least one random-effects term (``fit_lmm`` refuses
        any other before it gets here).

    Returns
    -------
    CrossProducts
        The cross-products, terms in lme4's order.

    Raises
    ------
    FitError
        If the terms other than the one with most levels are too many to factor densely.
    """
    assert design.y is not None and design.random, "checked by fit_lmm"
    blocks = lme4_order(design.random)
    n_rest = sum(b.q * b.n_levels for b in blocks[1:])
    if n_rest > MAX_DENSE_COLUMNS:
        raise FitError(
            f"The random-effects terms other than the one with most levels have {n_rest} "
            f"columns together; this engine handles at most {MAX_DENSE_COLUMNS}. Group the "
            "data more coarsely or drop a crossed term with many levels.")
    terms = _layout(blocks)
    xy = np.column_stack([np.asarray(design.X, dtype=np.float64),
                          np.asarray(design.y, dtype=np.float64)])
    first = blocks[0]
    ztz_first = _per_level_products(first, first.covariates)
    zxy_first = _per_level_products(first, xy)
    if n_rest:
        z_rest = sp.hstack([sparse_z(b) for b in blocks[1:]], format="csr")
        z_rest_t = z_rest.T.tocsr()
        ztz_rest = np.asarray((z_rest_t @ z_rest).toarray())
        zrest_zfirst = sp.csr_matrix(z_rest_t @ sparse_z(first))
        zrest_zfirst.sum_duplicates()  # canonical CSR: the factor rescales .data in place
        zxy_rest = np.asarray(z_rest_t @ xy)
    else:
        ztz_rest = np.zeros((0, 0))
        zrest_zfirst = sp.csr_matrix((0, first.q * first.n_levels))
        zxy_rest = np.zeros((0, xy.shape[1]))
    indptr, indices, theta_index = _lambda_rest_pattern(terms)
    return CrossProducts(
        terms=terms,
        n_obs=int(xy.shape[0]),
        n_fixed=int(design.X.shape[1]),
        ztz_first=ztz_first,
        zxy_first=zxy_first,
        ztz_rest=ztz_rest,
        zrest_zfirst=zrest_zfirst,
        zrest_zfirst_rows=np.repeat(np.arange(n_rest, dtype=np.intp),
                                    np.diff(zrest_zfirst.indptr)),
        dense_rows_start=_dense_rows_start(terms, zrest_zfirst),
        zxy_rest=zxy_rest,
        xy_xy=xy.T @ xy,
        lambda_rest_indptr=indptr,
        lambda_rest_indices=indices,
        lambda_rest_theta=theta_index,
    )
