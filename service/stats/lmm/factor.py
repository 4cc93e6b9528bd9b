"""The blocked Cholesky factor of the penalized least squares system at a given θ.

With the columns ordered (first term, rest of the terms, X, y) the system matrix is

    [ Λ1'Z1'Z1Λ1 + I    .                 .     ]
    [ Λr'Zr'Z1Λ1        Λr'Zr'ZrΛr + I    .     ]
    [ [X y]'Z1Λ1        [X y]'ZrΛr        [X y]'[X y] ]

and its lower Cholesky factor contains L (the factor of Λ'Z'ZΛ + I), R_ZX', c_u', R_X',
c_β' and sqrt(r²) (MixedModels.jl appends y the same way). The first diagonal block is
block diagonal (q1 × q1 per level) and is factored with batched numpy; the coupling of
the rest with the first term is sparse; the remaining Schur complement is dense.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from service.stats.design.types import FloatArray
from service.stats.lmm import batched
from service.stats.lmm.structure import CrossProducts


@dataclass(frozen=True, eq=False)
class BlockedFactor:
    """The factor at one θ.

    ``first`` holds the diagonal q1 × q1 blocks of L, one per level (level last);
    ``first_xy[:, :, l]`` is L1[l]⁻¹ T1' (Z1'[X y])[l], the first term's rows of R_ZX and
    c_u; ``rest_first`` is the sparse block of L below the first term; ``dense`` is the
    lower Cholesky factor of the remaining Schur complement (the rest's L, then R_X',
    c_β', sqrt(r²)).
    """

    theta: FloatArray
    relative_factors: tuple[FloatArray, ...]
    first: FloatArray
    first_xy: FloatArray
    rest_first: sp.csr_matrix
    dense: FloatArray
    n_rest: int
    n_fixed: int

    @property
    def logdet_l(self) -> float:
        """log |L|², L the Cholesky factor of Λ'Z'ZΛ + I."""
        q = self.first.shape[0]
        diag_first = self.first[np.arange(q), np.arange(q)]
        diag_rest = np.diagonal(self.dense)[:self.n_rest]
        return float(2.0 * (np.log(diag_first).sum() + np.log(diag_rest).sum()))

    @property
    def logdet_rx(self) -> float:
        """log |R_X|²."""
        diag = np.diagonal(self.dense)[self.n_rest:self.n_rest + self.n_fixed]
        return float(2.0 * np.log(diag).sum())

    @property
    def penalized_rss(self) -> float:
        """r²(θ): the minimized penalized residual sum of squares."""
        return float(self.dense[-1, -1] ** 2)

    def r_x(self) -> FloatArray:
        """R_X, the upper-triangular factor with R_X'R_X = X'V⁻¹X / σ²."""
        s = self.n_rest
        # only the lower triangle of ``dense`` holds the factor (see ``_cholesky_in_place``)
        return np.asarray(np.tril(self.dense[s:s + self.n_fixed, s:s + self.n_fixed]).T)

    def solve_rest(self, rhs: FloatArray, transpose: bool = False) -> FloatArray:
        """Lrr⁻¹ rhs (or Lrr⁻ᵀ rhs), Lrr the rest's diagonal block of L; rhs is (n_rest, k).

        Solved with the whole dense factor and zero-padded right-hand sides, which gives
        the same first n_rest rows (the factor is triangular) and lets LAPACK read the
        factor in place through its transpose instead of copying the block.
        """
        m = self.n_rest
        padded = np.zeros((self.dense.shape[0], rhs.shape[1]))
        padded[:m] = rhs
        solution = sla.solve_triangular(self.dense.T, padded, lower=False,
                                        trans="N" if transpose else "T", check_finite=False)
        return np.asarray(solution[:m])

    def fixed_effects(self) -> FloatArray:
        """β̂(θ) = R_X⁻¹ c_β."""
        s = self.n_rest
        c_beta = self.dense[s + self.n_fixed, s:s + self.n_fixed]
        if self.n_fixed == 0:
            return np.zeros(0)
        return np.asarray(sla.solve_triangular(self.r_x(), c_beta, lower=False))


def lambda_rest(cp: CrossProducts, theta: FloatArray) -> sp.csr_matrix:
    """The rest's block of Λθ as a sparse matrix (entries taken from θ, as lme4's Lind)."""
    m = cp.n_rest
    return sp.csr_matrix((theta[cp.lambda_rest_theta], cp.lambda_rest_indices,
                          cp.lambda_rest_indptr), shape=(m, m))


def first_block_sparse(blocks: FloatArray) -> sp.csr_matrix:
    """blockdiag of (q, q, l) blocks as an (l q) × (l q) sparse matrix."""
    q, _, levels = blocks.shape
    m = levels * q
    indptr = np.arange(0, m * q + 1, q)
    indices = (np.repeat(np.arange(levels) * q, q * q).reshape(levels, q, q)
               + np.arange(q)[None, None, :]).ravel()
    data = np.ascontiguousarray(blocks.transpose(2, 0, 1)).ravel()
    return sp.csr_matrix((data, indices, indptr), shape=(m, m))


def _rest_first(cp: CrossProducts, theta: FloatArray, t1: FloatArray,
                l11: FloatArray) -> sp.csr_matrix:
    """Λr'Zr'Z1 Λ1 L11⁻ᵀ, the block of L below the first term (same pattern as Zr'Z1).

    With scalar terms (q = 1) both products are rescalings of the stored entries.
    """
    a = cp.zrest_zfirst
    if t1.shape[0] == 1:
        column_scale = t1[0, 0] / l11[0, 0]
        data = a.data * column_scale[a.indices]
        scaled = sp.csr_matrix((data, a.indices, a.indptr), shape=a.shape)
    else:
        g = batched.left_multiply(t1, np.swapaxes(batched.inverse_lower(l11), 0, 1))
        scaled = sp.csr_matrix(a @ first_block_sparse(g))
    if cp.rest_is_diagonal:
        row_scale = theta[cp.lambda_rest_theta]
        rows = (cp.zrest_zfirst_rows if scaled.nnz == a.nnz
                else np.repeat(np.arange(a.shape[0]), np.diff(scaled.indptr)))
        return sp.csr_matrix((scaled.data * row_scale[rows], scaled.indices, scaled.indptr),
                             shape=a.shape)
    return sp.csr_matrix(lambda_rest(cp, theta).T @ scaled)


_PRODUCT_ENTRIES = 1 << 18


def _subtract_outer(schur: FloatArray, rest_first: sp.csr_matrix, split: int) -> None:
    """schur[:m, :m] -= Lr1 Lr1ᵀ, sparse rows by a sparse product, dense rows densely."""
    m = rest_first.shape[0]
    if split > 0:
        sparse_rows = rest_first[:split] if split < m else rest_first
        transposed = sparse_rows.T.tocsr()
        # in row chunks, so the sparse product and its dense copy stay a few MB
        step = max(1, _PRODUCT_ENTRIES // split)
        for start in range(0, split, step):
            stop = min(split, start + step)
            product = sparse_rows[start:stop] @ transposed
            schur[start:stop, :split] -= product.toarray()
    if split < m:
        dense_rows = rest_first[split:].toarray()
        cross = np.asarray(rest_first @ dense_rows.T)  # (m, m - split)
        schur[:m, split:m] -= cross
        schur[split:m, :split] -= cross[:split].T


def _rest_schur(cp: CrossProducts, theta: FloatArray, rest_first: sp.csr_matrix,
                first_xy: FloatArray, xy_schur: FloatArray) -> FloatArray:
    """The dense Schur complement of the first term's block (rest, X and y columns)."""
    m = cp.n_rest
    p1 = xy_schur.shape[0]
    first_xy_flat = batched.level_major(first_xy)
    schur = np.empty((m + p1, m + p1))
    if cp.rest_is_diagonal:
        lam = theta[cp.lambda_rest_theta]
        np.multiply(cp.ztz_rest, lam[:, None], out=schur[:m, :m])
        schur[:m, :m] *= lam[None, :]
        zxy = cp.zxy_rest * lam[:, None]
    else:
        lam_t = lambda_rest(cp, theta).T.tocsr()
        schur[:m, :m] = lam_t @ (lam_t @ cp.ztz_rest).T  # ztz_rest is symmetric
        zxy = lam_t @ cp.zxy_rest
    _subtract_outer(schur, rest_first, cp.dense_rows_start)
    schur[np.arange(m), np.arange(m)] += 1.0
    schur[m:, :m] = (zxy - rest_first @ first_xy_flat).T
    schur[:m, m:] = schur[m:, :m].T
    schur[m:, m:] = xy_schur
    return schur


def _cholesky_in_place(a: FloatArray) -> FloatArray:
    """Lower Cholesky factor of the symmetric C-ordered ``a``, overwriting its lower triangle.

    LAPACK sees ``a.T`` (Fortran order, the same memory) and factors its upper triangle,
    which is ``a``'s lower one; no copy of the (possibly large) matrix is made and the
    strict upper triangle is left as it was.
    """
    upper, info = sla.lapack.dpotrf(a.T, lower=0, clean=0, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"the system is not positive definite (dpotrf info {info})")
    return np.asarray(upper.T)


def update_factor(cp: CrossProducts, theta: FloatArray) -> BlockedFactor:
    """Factor the penalized least squares system at θ (MixedModels.jl's ``updateL!``).

    Parameters
    ----------
    cp
        The design's cross-products.
    theta
        Relative covariance parameters in lme4's order (any sign is accepted, so that
        finite differences may step past the bounds).

    Returns
    -------
    BlockedFactor
        The factor; raises ``numpy.linalg.LinAlgError`` if the system is not positive
        definite (possible only for X of deficient rank).
    """
    theta = np.asarray(theta, dtype=np.float64)
    factors = tuple(term.relative_factor(theta) for term in cp.terms)
    t1 = factors[0]
    q1 = t1.shape[0]
    # Λ1'Z1'Z1Λ1 + I, one q1 × q1 block per level
    a11 = batched.congruence(t1, cp.ztz_first)
    a11[np.arange(q1), np.arange(q1)] += 1.0
    l11 = batched.cholesky(a11)
    first_xy = batched.forward_solve(l11, batched.left_multiply(t1.T, cp.zxy_first))
    # Σ over levels and rows of the blocks: one product of the (p + 1) × (l q) matrix
    flat_xy = first_xy.transpose(1, 0, 2).reshape(first_xy.shape[1], -1)
    xy_schur = cp.xy_xy - flat_xy @ flat_xy.T
    if cp.n_rest == 0:
        schur = xy_schur
        rest_first = cp.zrest_zfirst  # the empty (0, l1 q1) block, not allocated per call
    else:
        rest_first = _rest_first(cp, theta, t1, l11)
        schur = _rest_schur(cp, theta, rest_first, first_xy, xy_schur)
    dense = _cholesky_in_place(schur)
    return BlockedFactor(theta=theta, relative_factors=factors, first=l11, first_xy=first_xy,
                         rest_first=rest_first, dense=dense, n_rest=cp.n_rest,
                         n_fixed=cp.n_fixed)
