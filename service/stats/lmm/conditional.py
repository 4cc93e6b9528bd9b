"""Conditional modes b̂ = Λθ û and their conditional covariances σ² Λθ (LLᵀ)⁻¹ Λθᵀ.

Only the diagonal q × q blocks of the conditional covariance are formed (what lme4's
``ranef(condVar = TRUE)`` reports), per level, from the blocked factor.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from service.stats.design.types import FloatArray
from service.stats.lmm import batched
from service.stats.lmm.factor import BlockedFactor, first_block_sparse
from service.stats.lmm.structure import CrossProducts

# Columns processed at a time when forming conditional variances, to bound the
# temporaries at a few n_rest × _CHUNK arrays of doubles.
_CHUNK = 256


def _split_rest(cp: CrossProducts, values: FloatArray) -> list[FloatArray]:
    """Cut a vector over the rest's columns into (levels, q) arrays per term."""
    out = []
    for term in cp.terms[1:]:
        start = term.column_start
        out.append(values[start:start + term.n_columns].reshape(term.n_levels, term.q))
    return out


def spherical_modes(cp: CrossProducts, factor: BlockedFactor, beta: FloatArray,
                    ) -> list[FloatArray]:
    """û per term as (levels, q) arrays: the solution of Lᵀ û = c_u − R_ZX β̂."""
    p = cp.n_fixed
    m = cp.n_rest
    xy = factor.first_xy  # (q1, p + 1, l1)
    first = xy[:, p, :] - np.tensordot(beta, xy[:, :p, :], axes=(0, 1))  # (q1, l1)
    rest: list[FloatArray] = []
    if m:
        dense = factor.dense
        rhs = dense[m + p, :m] - dense[m:m + p, :m].T @ beta
        u_rest = factor.solve_rest(rhs[:, None], transpose=True)[:, 0]
        correction = factor.rest_first.T @ u_rest  # level-major over the first term
        first = first - correction.reshape(first.shape[1], first.shape[0]).T
        rest = _split_rest(cp, u_rest)
    u_first = batched.backward_solve(factor.first, first[:, None, :])[:, 0, :]
    return [np.ascontiguousarray(u_first.T), *rest]


def conditional_modes(cp: CrossProducts, factor: BlockedFactor, beta: FloatArray,
                      ) -> list[FloatArray]:
    """b̂ = Λθ û per term, (levels, q) arrays in lme4's term order.

    Parameters
    ----------
    cp, factor
        Cross-products and the factor at θ̂.
    beta
        β̂.

    Returns
    -------
    list of numpy.ndarray
    """
    u = spherical_modes(cp, factor, beta)
    return [ui @ t.T for ui, t in zip(u, factor.relative_factors, strict=True)]


def _first_inverse_blocks(cp: CrossProducts, factor: BlockedFactor) -> FloatArray:
    """Diagonal blocks of (LLᵀ)⁻¹ for the first term, (l1, q1, q1)."""
    l11_inv = batched.inverse_lower(factor.first)  # (q, q, l)
    blocks = np.einsum("kal,kbl->lab", l11_inv, l11_inv)
    m = cp.n_rest
    if not m:
        return blocks
    # (LLᵀ)⁻¹₁₁ = L11⁻ᵀL11⁻¹ + VᵀV with V = Lrr⁻¹ Lr1 L11⁻¹ (block inverse of the factor)
    q, _, levels = l11_inv.shape
    w = sp.csc_matrix(factor.rest_first @ first_block_sparse(l11_inv))
    step = max(1, _CHUNK // q)
    for start in range(0, levels, step):
        stop = min(levels, start + step)
        chunk = w[:, start * q:stop * q].toarray()
        v = factor.solve_rest(chunk).reshape(m, stop - start, q)
        blocks[start:stop] += np.einsum("kla,klb->lab", v, v)
    return blocks


def _rest_inverse_blocks(cp: CrossProducts, factor: BlockedFactor) -> list[FloatArray]:
    """Diagonal blocks of S⁻¹ = Lrr⁻ᵀLrr⁻¹ per rest term, from column chunks of Lrr⁻¹."""
    m = cp.n_rest
    if not m:
        return []
    out = []
    for term in cp.terms[1:]:
        blocks = np.empty((term.n_levels, term.q, term.q))
        step = max(1, _CHUNK // term.q)
        for start in range(0, term.n_levels, step):
            stop = min(term.n_levels, start + step)
            first_col = term.column_start + start * term.q
            width = (stop - start) * term.q
            unit = np.zeros((m, width))
            unit[first_col + np.arange(width), np.arange(width)] = 1.0
            v = factor.solve_rest(unit).reshape(m, stop - start, term.q)
            blocks[start:stop] = np.einsum("kla,klb->lab", v, v)
        out.append(blocks)
    return out


def conditional_covariances(cp: CrossProducts, factor: BlockedFactor, sigma: float,
                            ) -> list[FloatArray]:
    """Per term, the (levels, q, q) conditional covariance blocks of b given y.

    Parameters
    ----------
    cp, factor
        Cross-products and the factor at θ̂.
    sigma
        σ̂.

    Returns
    -------
    list of numpy.ndarray
        σ² T (LLᵀ)⁻¹_ll Tᵀ for each level l of each term, lme4's term order.
    """
    blocks = [_first_inverse_blocks(cp, factor), *_rest_inverse_blocks(cp, factor)]
    return [sigma**2 * (t @ blk @ t.T)
            for blk, t in zip(blocks, factor.relative_factors, strict=True)]
