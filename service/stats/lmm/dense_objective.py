"""The profiled objective of a design with few random effects, as one dense Cholesky factor.

When all the random-effects terms together have few columns (m, up to ``MAX_COLUMNS``),
the whole penalized least squares system is small:

    [ ΛᵀZᵀZΛ + I    ΛᵀZᵀ[X y] ]   = Λ̄ᵀ [Z X y]ᵀ[Z X y] Λ̄ + diag(1ₘ, 0),   Λ̄ = blockdiag(Λθ, I),
    [ [X y]ᵀZΛ      [X y]ᵀ[X y] ]

and one LAPACK Cholesky of its m + p + 1 rows gives log|L|², log|R_X|² and r² at once
(the order of its diagonal). For a bootstrap's thousands of refits of a small model this
is several times cheaper than the blocked factor (``factor.update_factor``), whose
per-call overhead dominates at that size; the numbers are the same.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import lapack

from service.stats.design.types import FloatArray, IntArray
from service.stats.lmm.factor import first_block_sparse
from service.stats.lmm.objective import Method, Objective, residual_dof
from service.stats.lmm.structure import CrossProducts

# Above this many random-effects columns the dense factor's O(m³) loses to the blocked one
# (measured single-threaded, per evaluation: 40 columns 27 µs dense against 258 µs blocked
# for two crossed terms, 120 columns 343 against 535; with one term the batched
# single_term objective is as fast from about 64 columns on: 80 columns 56 against 34).
MAX_COLUMNS = 120
MAX_COLUMNS_ONE_TERM = 64


def fits_densely(cp: CrossProducts) -> bool:
    """Whether the design's random effects are few enough for ``DenseObjective`` to be
    the cheapest evaluation."""
    columns = cp.terms[0].n_columns + cp.n_rest
    return columns <= (MAX_COLUMNS_ONE_TERM if cp.n_rest == 0 else MAX_COLUMNS)


def _lambda_pattern(cp: CrossProducts) -> tuple[IntArray, IntArray, IntArray]:
    """(row, column, θ index) of every stored entry of Λθ over all the columns."""
    first = cp.terms[0]
    q = first.q
    levels = np.arange(first.n_levels)[:, None] * q
    rows = (levels + first.lower_rows[None, :]).ravel()
    cols = (levels + first.lower_cols[None, :]).ravel()
    theta = np.tile(first.theta_start + np.arange(first.n_theta), first.n_levels)
    offset = first.n_columns
    rest_rows = np.repeat(np.arange(cp.n_rest), np.diff(cp.lambda_rest_indptr)) + offset
    return (np.concatenate([rows, rest_rows]).astype(np.intp),
            np.concatenate([cols, cp.lambda_rest_indices + offset]).astype(np.intp),
            np.concatenate([theta, cp.lambda_rest_theta]).astype(np.intp))


class DenseObjective(Objective):
    """d(θ) (ML) or d_R(θ) (REML) of a design with at most ``MAX_COLUMNS`` random-effects
    columns; callable like ``objective.Objective`` and counting evaluations.

    Parameters
    ----------
    cp
        The design's cross-products.
    method
        ``"REML"`` or ``"ML"``.
    """

    def __init__(self, cp: CrossProducts, method: Method) -> None:
        if cp.terms[0].n_columns + cp.n_rest > MAX_COLUMNS:
            raise ValueError(f"DenseObjective takes at most {MAX_COLUMNS} random-effects "
                             "columns")
        super().__init__(cp, method)
        first = cp.terms[0].n_columns
        m = first + cp.n_rest
        size = m + cp.n_fixed + 1
        system = np.zeros((size, size))  # [Z X y]ᵀ[Z X y], from the blocked cross-products
        system[:first, :first] = first_block_sparse(cp.ztz_first).toarray()
        system[first:m, :first] = cp.zrest_zfirst.toarray()
        system[:first, first:m] = system[first:m, :first].T
        system[first:m, first:m] = cp.ztz_rest
        q1, k, levels = cp.zxy_first.shape
        system[:first, m:] = cp.zxy_first.transpose(2, 0, 1).reshape(levels * q1, k)
        system[first:m, m:] = cp.zxy_rest
        system[m:, :m] = system[:m, m:].T
        system[m:, m:] = cp.xy_xy
        self._system = system
        self._m = m
        self._p = cp.n_fixed
        self._rows, self._cols, self._theta = _lambda_pattern(cp)
        self._lambda = np.eye(size)  # Λ̄: Λθ's entries are written in place per call
        self._diagonal = np.arange(m)
        self._dof = residual_dof(cp, method)

    def __call__(self, theta: FloatArray) -> float:
        self.evaluations += 1
        m, p = self._m, self._p
        lam = self._lambda
        lam[:m, :m] = 0.0
        lam[self._rows, self._cols] = np.asarray(theta, dtype=np.float64)[self._theta]
        penalized = lam.T @ self._system @ lam
        penalized[self._diagonal, self._diagonal] += 1.0
        factor, info = lapack.dpotrf(penalized, lower=1, overwrite_a=1)
        if info != 0:
            return math.inf
        diagonal = np.diagonal(factor)
        r2 = float(diagonal[m + p] ** 2)
        if not r2 > 0.0:
            return math.inf
        value = (2.0 * float(np.log(diagonal[:m]).sum())
                 + self._dof * (1.0 + math.log(2.0 * math.pi * r2 / self._dof)))
        if self.method == "REML":
            value += 2.0 * float(np.log(diagonal[m:m + p]).sum())
        return value
