"""Kenward and Roger's adjusted covariance of β̂, as pbkrtest's ``vcovAdj`` computes it.

pbkrtest writes the marginal covariance of y linearly in the variance components γ (each
term's variances and covariances, the lower triangle column by column, then σ²):

    Σ = Σ_i γ_i G_i,   G_i = Z_s (I_l ⊗ E_i) Z_sᵀ  (E_i: 1 at (a, b) and (b, a)),  G_σ² = I.

With S = Σ⁻¹, Φ = vcov(β̂), P_i = −XᵀS G_i S X and Q_ij = XᵀS G_i S G_j S X it forms the
expected information I_ij = tr(S G_i S G_j) − 2 tr(Φ Q_ij) + tr(Φ P_i Φ P_j) (twice the REML
information), W = 2 I⁻¹, and Φ_A = Φ + 2 Φ U Φ with U = Σ_ij W_ij (Q_ij − P_i Φ P_j).

G_i is never formed: with A_s = Z_s (A = I for σ²), V_s = A_sᵀ S X and C_st = A_sᵀ S A_t,
P_i = −V_sᵀ E_i V_s, Q_ij = V_sᵀ E_i C_st E_j V_t and tr(S G_i S G_j) = tr(E_i C_st E_j C_ts).
Z is kept sparse (one q-wide block per row), so no product costs more than O(n² q); S
itself is dense (n × n), which bounds the rows this can take (``MAX_ROWS``: about 4 s
and 0.8 GB at 4000 rows and 2600 random-effects columns).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from service.stats.design.types import FloatArray, RandomBlock
from service.stats.errors import StatsError

#: Most rows a Kenward-Roger adjustment is computed for (S = Σ⁻¹ is a dense n × n matrix).
MAX_ROWS = 4000
#: Most random-effects columns (Z is held densely, as are the C_st blocks).
MAX_RANDOM_COLUMNS = 4000


class KenwardRogerTooLarge(StatsError):
    """The model is too large for the dense Kenward-Roger computation."""


@dataclass(frozen=True, eq=False)
class AdjustedCovariance:
    """pbkrtest's ``vcovAdj`` and what ``KRmodcomp`` reads from it: Φ, Φ_A, the P_i and W."""

    vcov: FloatArray
    adjusted: FloatArray
    p: tuple[FloatArray, ...]
    w: FloatArray


@dataclass(frozen=True, eq=False)
class _Parameter:
    """γ_i: a term's (a, b) entry of its covariance, or σ² (term None)."""

    term: int | None
    a: int
    b: int


def _sparse_z(block: RandomBlock) -> sp.csr_matrix:
    """Z of one term, n × (levels · q), level-major: one q-wide block per row."""
    n, q = block.covariates.shape
    columns = (block.codes[:, None] * q + np.arange(q)[None, :]).ravel()
    return sp.csr_matrix((block.covariates.ravel(), columns, np.arange(0, n * q + 1, q)),
                         shape=(n, block.n_levels * q))


def _marginal_covariance(blocks: Sequence[RandomBlock], covariances: Sequence[FloatArray],
                         sigma: float) -> FloatArray:
    """Σ = σ² I + Σ_s Z_s (I ⊗ Cov_s) Z_sᵀ: rows of one level covary by c_rᵀ Cov c_r'."""
    n = blocks[0].codes.shape[0] if blocks else 0
    out = sigma**2 * np.eye(n)
    for block, cov in zip(blocks, covariances, strict=True):
        same_level = block.codes[:, None] == block.codes[None, :]
        out += (block.covariates @ cov @ block.covariates.T) * same_level
    return out


def _apply_e(matrix: FloatArray, q: int, a: int, b: int) -> FloatArray:
    """(I_l ⊗ E) @ matrix, E the q × q symmetric indicator of (a, b)."""
    rows, cols = matrix.shape
    blocks = matrix.reshape(rows // q, q, cols)
    out = np.zeros_like(blocks)
    out[:, a] = blocks[:, b]
    if a != b:
        out[:, b] = blocks[:, a]
    return out.reshape(rows, cols)


def _parameters(blocks: Sequence[RandomBlock]) -> list[_Parameter]:
    params: list[_Parameter] = []
    for s, block in enumerate(blocks):
        for b in range(block.q):  # R's lower.tri(diag = TRUE): column by column
            params.extend(_Parameter(s, a, b) for a in range(b, block.q))
    params.append(_Parameter(None, 0, 0))
    return params


def adjusted_covariance(x: FloatArray, blocks: Sequence[RandomBlock],
                        covariances: Sequence[FloatArray], sigma: float,
                        vcov: FloatArray) -> AdjustedCovariance:
    """Kenward-Roger's adjusted covariance of β̂ at a REML fit.

    Parameters
    ----------
    x
        The fixed-effects matrix (user units).
    blocks
        The random-effects terms in lme4's order (the order of the variance components).
    covariances
        Each term's covariance matrix of its random effects (σ̂² T Tᵀ).
    sigma
        σ̂.
    vcov
        vcov(β̂) of the REML fit.

    Raises
    ------
    KenwardRogerTooLarge
        Over ``MAX_ROWS`` rows or ``MAX_RANDOM_COLUMNS`` random-effects columns.
    """
    n = x.shape[0]
    m = sum(b.n_levels * b.q for b in blocks)
    if n > MAX_ROWS or m > MAX_RANDOM_COLUMNS:
        raise KenwardRogerTooLarge(
            f"Kenward-Roger's adjustment needs the dense {n} × {n} covariance of the "
            f"response and its inverse; it is computed for models of at most {MAX_ROWS} rows "
            f"and {MAX_RANDOM_COLUMNS} random-effects columns (this one has {n} and {m}). "
            "Use ddf=Satterthwaite, whose cost does not grow with the rows.")
    zs = [_sparse_z(b) for b in blocks]
    sigma_y = _marginal_covariance(blocks, covariances, sigma)
    s = sla.cho_solve(sla.cho_factor(sigma_y, lower=True, overwrite_a=True), np.eye(n),
                      overwrite_b=True)
    s = (s + s.T) / 2.0
    sx = s @ x
    residual = len(blocks)  # the index of σ², whose "Z" is the identity
    v = [np.asarray(z.T @ sx) for z in zs] + [sx]  # V_a = A_aᵀ S X
    sz = [np.asarray((z.T @ s).T) for z in zs]  # S Z_a, n × m_a

    def c(a: int, b: int) -> FloatArray:
        """C_ab = A_aᵀ S A_b."""
        if a == residual:
            return s if b == residual else sz[b]
        return sz[a].T if b == residual else np.asarray(zs[a].T @ sz[b])

    params = _parameters(blocks)
    k = len(params)

    def index(param: _Parameter) -> int:
        return residual if param.term is None else param.term

    def e(param: _Parameter, matrix: FloatArray) -> FloatArray:
        if param.term is None:
            return matrix
        return _apply_e(matrix, blocks[param.term].q, param.a, param.b)

    ev = [e(prm, v[index(prm)]) for prm in params]  # E_i V_s
    p_mats = [-(v[index(prm)].T @ ev[i]) for i, prm in enumerate(params)]
    p_mats = [(pm + pm.T) / 2.0 for pm in p_mats]  # pbkrtest's forceSymmetric
    cache: dict[tuple[int, int], FloatArray] = {}  # C_ab, shared by a term's parameters

    q_mats: dict[tuple[int, int], FloatArray] = {}
    info = np.zeros((k, k))
    for i, pi in enumerate(params):
        for j in range(i, k):
            pj = params[j]
            key = (index(pi), index(pj))
            if key not in cache:
                cache[key] = c(*key)
            cij = cache[key]
            q_mats[i, j] = ev[i].T @ cij @ ev[j]
            # tr(S G_i S G_j) = tr((E_i C_ij)(E_j C_ji)), C_ji = C_ijᵀ: a sum of products
            trace = float(np.sum(e(pi, cij) * e(pj, cij.T).T))
            info[i, j] = info[j, i] = (trace - 2.0 * float(np.sum(vcov * q_mats[i, j]))
                                       + float(np.sum((vcov @ p_mats[i]) * (p_mats[j] @ vcov))))
    eigen = np.linalg.eigvalsh(info)
    w = 2.0 * (np.linalg.inv(info) if np.min(np.abs(eigen)) > 1e-10 else np.linalg.pinv(info))
    w = (w + w.T) / 2.0
    u = np.zeros_like(vcov)
    for i in range(k - 1):
        for j in range(i + 1, k):
            u += w[i, j] * (q_mats[i, j] - p_mats[i] @ vcov @ p_mats[j])
    u = u + u.T
    for i in range(k):
        u += w[i, i] * (q_mats[i, i] - p_mats[i] @ vcov @ p_mats[i])
    adjusted = vcov + 2.0 * vcov @ u @ vcov
    return AdjustedCovariance(vcov=vcov, adjusted=adjusted, p=tuple(p_mats), w=w)
