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
from service.stats.lmm.structure import CrossProducts


@dataclass(frozen=True, eq=False)
class BlockedFactor:
    """The factor at one θ.

    ``first`` holds the l1 diagonal q1 × q1 blocks of L; ``first_xy[l]`` is
    L1[l]⁻¹ T1' (Z1'[X y])[l], i.e. the first term's rows of R_ZX and c_u; ``rest_first``
    is the sparse block of L below the first term; ``dense`` is the lower Cholesky factor
    of the remaining Schur complement (the rest's L, then R_X', c_β', sqrt(r²)).
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
        diag_first = np.diagonal(self.first, axis1=1, axis2=2)
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
        return np.asarray(self.dense[s:s + self.n_fixed, s:s + self.n_fixed].T)

    def fixed_effects(self) -> FloatArray:
        """β̂(θ) = R_X⁻¹ c_β."""
        s = self.n_rest
        c_beta = self.dense[s + self.n_fixed, s:s + self.n_fixed]
        if self.n_fixed == 0:
            return np.zeros(0)
        return np.asarray(sla.solve_triangular(self.r_x(), c_beta, lower=False))


def _batched_cholesky(blocks: FloatArray) -> FloatArray:
    if blocks.shape[1] == 1:
        return np.asarray(np.sqrt(blocks), dtype=np.float64)
    return np.asarray(np.linalg.cholesky(blocks), dtype=np.float64)


def _batched_lower_solve(lower: FloatArray, rhs: FloatArray) -> FloatArray:
    if lower.shape[1] == 1:
        return np.asarray(rhs / lower, dtype=np.float64)
    return np.asarray(np.linalg.solve(lower, rhs), dtype=np.float64)


def lambda_rest(cp: CrossProducts, theta: FloatArray) -> sp.csr_matrix:
    """The rest's block of Λθ as a sparse matrix (entries taken from θ, as lme4's Lind)."""
    m = cp.n_rest
    return sp.csr_matrix((theta[cp.lambda_rest_theta], cp.lambda_rest_indices,
                          cp.lambda_rest_indptr), shape=(m, m))


def _first_block_sparse(blocks: FloatArray) -> sp.csr_matrix:
    """blockdiag of (l, q, q) dense blocks as a sparse matrix."""
    levels, q, _ = blocks.shape
    m = levels * q
    indptr = np.arange(0, m * q + 1, q)
    indices = (np.repeat(np.arange(levels) * q, q * q).reshape(levels, q, q)
               + np.arange(q)[None, None, :]).ravel()
    return sp.csr_matrix((blocks.ravel(), indices, indptr), shape=(m, m))


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
    a11 = t1.T @ cp.ztz_first @ t1
    a11 += np.eye(q1)
    l11 = _batched_cholesky(a11)
    first_xy = _batched_lower_solve(l11, t1.T @ cp.zxy_first)
    xy_schur = cp.xy_xy - np.einsum("lak,laj->kj", first_xy, first_xy)
    m = cp.n_rest
    if m == 0:
        schur = xy_schur
        rest_first = sp.csr_matrix((0, l11.shape[0] * q1))
    else:
        lam_r = lambda_rest(cp, theta)
        lam_r_t = lam_r.T.tocsr()
        # Λ1 L11⁻ᵀ, block diagonal: the first term's columns of L below the diagonal are
        # Λr'Zr'Z1 Λ1 L11⁻ᵀ
        l11_inv = np.linalg.inv(l11) if q1 > 1 else 1.0 / l11
        g = _first_block_sparse(t1 @ np.swapaxes(l11_inv, 1, 2))
        rest_first = sp.csr_matrix(lam_r_t @ cp.zrest_zfirst @ g)
        first_xy_flat = first_xy.reshape(-1, first_xy.shape[2])
        p1 = xy_schur.shape[0]
        schur = np.empty((m + p1, m + p1))
        zz = lam_r_t @ (lam_r_t @ cp.ztz_rest).T  # Λr'ZrᵀZrΛr (ztz_rest is symmetric)
        schur[:m, :m] = zz - (rest_first @ rest_first.T).toarray()
        schur[:m, :m] += np.eye(m)
        schur[m:, :m] = (lam_r_t @ cp.zxy_rest - rest_first @ first_xy_flat).T
        schur[:m, m:] = schur[m:, :m].T
        schur[m:, m:] = xy_schur
    dense = sla.cholesky(schur, lower=True, check_finite=False)
    return BlockedFactor(theta=theta, relative_factors=factors, first=l11, first_xy=first_xy,
                         rest_first=rest_first, dense=dense, n_rest=m, n_fixed=cp.n_fixed)
