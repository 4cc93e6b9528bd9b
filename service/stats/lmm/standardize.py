"""Fit on well-scaled columns and map the answers back: the data's units never reach the
arithmetic.

The penalized least squares system is formed from cross-products (Z'Z, Z'X, X'X, ...) and
factored by Cholesky. Cross-products of columns that are far from zero relative to their
spread cancel catastrophically in the Schur complements: y + 10⁷ leaves r²(θ) with no
correct digit. So the engine never sees the user's columns. It fits the same model in
affinely equivalent coordinates and maps every answer back exactly:

- X̃ = X M: columns centred on the intercept column (when there is one) and scaled to unit
  root mean square. β = M β̃.
- ỹ = (y − X̃γ) / s: the part of y that X explains is taken out first (two passes of least
  squares, so that even y ≈ 10⁷ + noise is reduced to its residual to full precision), then
  scaled. The model for ỹ has the same θ and random effects, β̃ shifted by γ and every
  other answer in units of s.
- Per random-effects term, covariates C̃ = C K (centred on the term's intercept column
  when it has one, scaled to unit root mean square). b = K b̃, so the relative covariance
  is T Tᵀ = K T̃ T̃ᵀ Kᵀ and T is its lower Cholesky factor (lme4's θ).

Only the parametrization of the optimizer changes; the model, its likelihood and its
optimum do not. Satterthwaite's df are invariant to the parametrization of the variance
parameters, so they are computed in the standardized coordinates, where finite
differences do not depend on the data's units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from service.stats.design.types import Design, FloatArray, RandomBlock


@dataclass(frozen=True, eq=False)
class Standardization:
    """How a standardized fit maps back to the user's columns.

    ``fixed_map`` is M (β̃ → β), ``response_shift`` is γ (the least-squares coefficients of
    y on X̃ that were removed from y), ``response_scale`` is s, ``term_maps[i]`` is K for
    ``design.random[i]`` of the *original* design and ``term_scales[i]`` the root mean
    square of each of its covariates as given (the scales of the optimizer's θ̂, see
    ``optimizer_map``); ``term_off_centre[i]`` is the largest |mean| / SD of a covariate
    of a term with an intercept (0 without one).
    """

    fixed_map: FloatArray
    response_shift: FloatArray
    response_scale: float
    term_maps: tuple[FloatArray, ...]
    term_scales: tuple[FloatArray, ...]
    term_off_centre: tuple[float, ...]

    @property
    def log_det_fixed_map(self) -> float:
        """log det(M)²: the REML criterion's log|R_X|² term changes by it."""
        if self.fixed_map.size == 0:
            return 0.0
        _, logdet = np.linalg.slogdet(self.fixed_map)
        return float(2.0 * logdet)

    def fixed_effects(self, beta_tilde: FloatArray) -> FloatArray:
        """β in the user's units from β̃ of the standardized fit."""
        return np.asarray(self.fixed_map @ (self.response_shift + self.response_scale * beta_tilde))

    def fixed_covariance(self, cov_tilde: FloatArray) -> FloatArray:
        """A p × p covariance (or its derivative) of β̃ in the user's units."""
        m = self.fixed_map
        return np.asarray(self.response_scale**2 * (m @ cov_tilde @ m.T))

    def optimizer_map(self, block_index: int) -> FloatArray:
        """G with T̃ = lower_factor(G T̂), T̂ the optimizer's factor of this term.

        The optimizer works on θ̂ = the user's θ with each covariate's row of T multiplied by
        that covariate's root mean square (T = D⁻¹T̂): a diagonal rescaling, so it has lme4's
        parametrization (the same boundaries and, for covariates of unit size, lme4's start
        and path) while the data's units do not reach it. The objective is evaluated at the
        standardized T̃, where the arithmetic is well conditioned.
        """
        return np.asarray(np.linalg.solve(self.term_maps[block_index],
                                          np.diag(1.0 / self.term_scales[block_index])))

    def user_factor(self, block_index: int, t_hat: FloatArray) -> FloatArray:
        """The user's T from the optimizer's T̂ (T = D⁻¹T̂)."""
        return np.asarray(t_hat / self.term_scales[block_index][:, None])

    def relative_factor(self, block_index: int, t_tilde: FloatArray) -> FloatArray:
        """T (lower triangular, non-negative diagonal) with T Tᵀ = K T̃ T̃ᵀ Kᵀ."""
        return lower_factor(self.term_maps[block_index] @ t_tilde)


def lower_factor(a: FloatArray) -> FloatArray:
    """The lower-triangular L with non-negative diagonal and L Lᵀ = A Aᵀ.

    From the QR decomposition Aᵀ = QR (A Aᵀ = RᵀR), which unlike a Cholesky of A Aᵀ is
    stable when A is (nearly) singular, as at a boundary fit.
    """
    if a.shape == (1, 1):
        return np.abs(a)
    r = np.linalg.qr(a.T, mode="r")
    signs = np.where(np.diagonal(r) < 0, -1.0, 1.0)
    return np.asarray((signs[:, None] * r).T)


def _constant_column(columns: FloatArray) -> int | None:
    """Index of the first column whose values are all equal and non-zero (an intercept)."""
    if columns.shape[0] == 0:
        return None
    for j in range(columns.shape[1]):
        column = columns[:, j]
        if column[0] != 0.0 and np.all(column == column[0]):
            return j
    return None


def _root_mean_square(column: FloatArray) -> float:
    value = float(np.sqrt(np.mean(column * column))) if len(column) else 0.0
    return value if value > 0.0 and math.isfinite(value) else 1.0


def column_map(columns: FloatArray) -> FloatArray:
    """K with columns @ K centred on the intercept column (if any) and of unit RMS.

    The intercept column itself becomes all ones; with no intercept the columns are only
    scaled (shifting them would change the model).
    """
    return _column_map(columns)[0]


def _column_map(columns: FloatArray) -> tuple[FloatArray, float]:
    """``column_map`` and the largest |mean| / SD of a centred column (0 if none is)."""
    k = columns.shape[1]
    out = np.eye(k)
    off_centre = 0.0
    intercept = _constant_column(columns)
    if intercept is not None:
        value = float(columns[0, intercept])
        out[intercept, intercept] = 1.0 / value
        ones = columns[:, intercept] / value
    for j in range(k):
        if j == intercept:
            continue
        column = columns[:, j]
        if intercept is not None:
            mean = float(np.mean(column))
            column = column - mean * ones
            out[intercept, j] = -mean / value
        scale = _root_mean_square(column)
        out[:, j] /= scale
        if intercept is not None:
            off_centre = max(off_centre, abs(mean) / scale)
    return out, off_centre


def _least_squares(x: FloatArray, y: FloatArray) -> FloatArray:
    if x.shape[1] == 0:
        return np.zeros(0)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return np.asarray(coef, dtype=np.float64)


def standardize(design: Design) -> tuple[Design, Standardization]:
    """The design in standardized coordinates, and the map back.

    Parameters
    ----------
    design
        A mixed-model design with a response.

    Returns
    -------
    (Design, Standardization)
        The standardized design (same rows, names, levels and codes) and the map.
    """
    assert design.y is not None
    x = np.asarray(design.X, dtype=np.float64)
    y = np.asarray(design.y, dtype=np.float64)
    fixed_map = column_map(x) if x.shape[1] else np.zeros((0, 0))
    x_tilde = x @ fixed_map
    # two passes: the second recovers the digits the first lost to a large mean
    shift = _least_squares(x_tilde, y)
    residual = y - x_tilde @ shift
    correction = _least_squares(x_tilde, residual)
    shift = shift + correction
    residual = residual - x_tilde @ correction
    scale = _root_mean_square(residual)
    blocks: list[RandomBlock] = []
    maps: list[FloatArray] = []
    scales: list[FloatArray] = []
    off_centre: list[float] = []
    for block in design.random:
        covariates = np.asarray(block.covariates, dtype=np.float64)
        k, ratio = _column_map(covariates)
        maps.append(k)
        off_centre.append(ratio)
        scales.append(np.array([_root_mean_square(covariates[:, j])
                                for j in range(covariates.shape[1])]))
        blocks.append(replace(block, covariates=np.ascontiguousarray(block.covariates @ k)))
    standardized = replace(design, y=residual / scale, X=np.ascontiguousarray(x_tilde),
                           random=tuple(blocks))
    return standardized, Standardization(fixed_map=fixed_map, response_shift=shift,
                                         response_scale=scale, term_maps=tuple(maps),
                                         term_scales=tuple(scales),
                                         term_off_centre=tuple(off_centre))
