"""Small dense linear algebra on stacks of q × q blocks, one per level.

Blocks are stored with the level as the last axis, ``(q, q, l)``, and the loops run over
the (tiny) q, never over the levels: each step is a vector operation over all levels.
This is much faster than LAPACK called per block for the q ≤ 3 of random-effects terms.
"""

from __future__ import annotations

import numpy as np

from service.stats.design.types import FloatArray


def cholesky(a: FloatArray) -> FloatArray:
    """Lower Cholesky factors of the symmetric positive definite blocks ``a[:, :, l]``."""
    q = a.shape[0]
    if q == 1:
        return np.sqrt(a)
    lower = np.zeros_like(a)
    for j in range(q):
        # column j from the columns before it (none for the first: no empty einsum, whose
        # set-up is most of this function's cost at small q)
        lower[j, j] = np.sqrt(a[j, j] - np.einsum("kl,kl->l", lower[j, :j], lower[j, :j])
                              if j else a[j, j])
        for i in range(j + 1, q):
            lower[i, j] = ((a[i, j] - np.einsum("kl,kl->l", lower[i, :j], lower[j, :j])
                            if j else a[i, j]) / lower[j, j])
    return lower


def forward_solve(lower: FloatArray, rhs: FloatArray) -> FloatArray:
    """Solve L[:, :, l] x[:, :, l] = rhs[:, :, l] for lower-triangular L; rhs is (q, k, l)."""
    q = lower.shape[0]
    if q == 1:
        return rhs / lower[0, 0]
    x = np.empty_like(rhs)
    for i in range(q):
        acc = rhs[i].copy()
        for k in range(i):
            acc -= lower[i, k] * x[k]
        x[i] = acc / lower[i, i]
    return x


def backward_solve(lower: FloatArray, rhs: FloatArray) -> FloatArray:
    """Solve L[:, :, l]ᵀ x[:, :, l] = rhs[:, :, l] for lower-triangular L; rhs is (q, k, l)."""
    q = lower.shape[0]
    if q == 1:
        return rhs / lower[0, 0]
    x = np.empty_like(rhs)
    for i in reversed(range(q)):
        acc = rhs[i].copy()
        for k in range(i + 1, q):
            acc -= lower[k, i] * x[k]
        x[i] = acc / lower[i, i]
    return x


def inverse_lower(lower: FloatArray) -> FloatArray:
    """L⁻¹ per level, (q, q, l)."""
    q, _, levels = lower.shape
    identity = np.broadcast_to(np.eye(q)[:, :, None], (q, q, levels))
    return forward_solve(lower, np.ascontiguousarray(identity))


def congruence(t: FloatArray, a: FloatArray) -> FloatArray:
    """Tᵀ A[:, :, l] T per level for one q × q matrix T."""
    q = t.shape[0]
    if q == 1:
        return a * (t[0, 0] ** 2)
    # matmul on reshaped views rather than tensordot, whose Python-level set-up cost more
    # than the arithmetic for the few levels of a small model (this runs at every θ)
    left = (t.T @ a.reshape(q, -1)).reshape(a.shape)  # (q, q, l): Tᵀ A
    return np.ascontiguousarray(np.matmul(left.transpose(0, 2, 1), t).transpose(0, 2, 1))


def left_multiply(m: FloatArray, b: FloatArray) -> FloatArray:
    """M B[:, :, l] per level for one matrix M; b is (q, k, l)."""
    if m.shape == (1, 1):
        return b * m[0, 0]
    q, k, levels = b.shape
    return (m @ b.reshape(q, k * levels)).reshape(m.shape[0], k, levels)


def block_product(a: FloatArray, b: FloatArray) -> FloatArray:
    """A[:, :, l] B[:, :, l] per level."""
    return np.einsum("ikl,kjl->ijl", a, b)


def level_major(blocks: FloatArray) -> FloatArray:
    """(q, k, l) blocks as the (l q) × k matrix whose rows are level-major."""
    q, k, levels = blocks.shape
    return np.ascontiguousarray(blocks.transpose(2, 0, 1)).reshape(levels * q, k)
