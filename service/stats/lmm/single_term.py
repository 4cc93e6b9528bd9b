"""The profiled objective of a model with one random-effects term, in few array operations.

A bootstrap refits the same design thousands of times and each refit evaluates the
objective some forty times, so the evaluation's fixed cost (numpy calls on tiny arrays)
is the bootstrap's cost. With a single term, Λθ'Z'ZΛθ + I is block diagonal (one q × q
block per level) and the objective needs only: the blocks Tᵀ(Z'Z)ₗT + I (one product of
the q² × q² Kronecker matrix Tᵀ ⊗ Tᵀ with all levels' vec(Z'Z)ₗ), their Cholesky
factors, L⁻¹Tᵀ Z'[X y] and the dense factor of the (p + 1) × (p + 1) Schur complement.
The same numbers as ``objective.Objective`` (``factor.update_factor``), which models with
more terms use.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import lapack

from service.stats.design.types import FloatArray
from service.stats.lmm.objective import Method, Objective, residual_dof
from service.stats.lmm.structure import CrossProducts


class SingleTermObjective(Objective):
    """d(θ) (ML) or d_R(θ) (REML) of a design whose only random-effects term is
    ``cp.terms[0]``; callable like ``objective.Objective`` and counting evaluations.

    Parameters
    ----------
    cp
        Cross-products with ``n_rest == 0``.
    method
        ``"REML"`` or ``"ML"``.
    """

    def __init__(self, cp: CrossProducts, method: Method) -> None:
        if cp.n_rest:
            raise ValueError("SingleTermObjective needs a design with one random-effects term")
        super().__init__(cp, method)
        term = cp.terms[0]
        self._q = term.q
        self._p = cp.n_fixed
        self._rows = term.lower_rows
        self._cols = term.lower_cols
        # level first, so that numpy's stacked Cholesky and solve run over the levels
        self._ztz = cp.ztz_first.reshape(term.q * term.q, term.n_levels)
        self._zxy = np.ascontiguousarray(cp.zxy_first.transpose(2, 0, 1))  # (l, q, p + 1)
        self._identity = np.eye(term.q)
        self._xy_xy = cp.xy_xy
        self._dof = residual_dof(cp, method)

    def __call__(self, theta: FloatArray) -> float:
        self.evaluations += 1
        q, p = self._q, self._p
        if q == 1:
            scale = float(theta[0]) ** 2
            blocks = scale * self._ztz[0] + 1.0  # Λ'Z'ZΛ + I, one number per level
            logdet_l = float(np.log(blocks).sum())
            zxy = self._zxy[:, 0, :]  # (l, p + 1)
            schur = self._xy_xy - (zxy * (scale / blocks)[:, None]).T @ zxy
        else:
            tt = np.zeros((q, q))
            tt[self._cols, self._rows] = theta  # Tᵀ
            # vec(Tᵀ A T) = (Tᵀ ⊗ Tᵀ) vec(A), for every level's A at once
            kron = (tt[:, None, :, None] * tt[None, :, None, :]).reshape(q * q, q * q)
            blocks = (kron @ self._ztz).T.reshape(-1, q, q) + self._identity
            lower = np.linalg.cholesky(blocks)
            logdet_l = 2.0 * float(np.log(np.diagonal(lower, axis1=1, axis2=2)).sum())
            solved = np.linalg.solve(lower, tt @ self._zxy).reshape(-1, p + 1)  # L⁻¹TᵀZ'[X y]
            schur = self._xy_xy - solved.T @ solved
        dense, info = lapack.dpotrf(schur, lower=1)
        if info != 0:
            return math.inf
        diagonal = np.diagonal(dense)
        r2 = float(diagonal[p] ** 2)
        if not r2 > 0.0:
            return math.inf
        value = logdet_l + self._dof * (1.0 + math.log(2.0 * math.pi * r2 / self._dof))
        if self.method == "REML":
            value += 2.0 * float(np.log(diagonal[:p]).sum())
        return value
