"""Immutable fit results, complete when created.

``FitResult.to_dict()`` is the ``result`` object of the v1 API contract (DESIGN.md); the
conditional modes and the prediction state are served by their own endpoints.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

ModelKind = Literal["lm", "lmm", "lm_by_group"]


@dataclass(frozen=True)
class FixedEffect:
    """One coefficient. An aliased one (a column that is a combination of earlier ones, so
    not estimable) has ``aliased`` set and no numbers, as R's ``summary`` prints NA."""

    term: str
    estimate: float | None
    std_error: float | None
    statistic: float | None
    df: float | None
    p_value: float | None
    conf_low: float | None
    conf_high: float | None
    aliased: bool = False

    @classmethod
    def not_estimable(cls, term: str) -> FixedEffect:
        """The row R's ``summary`` prints as NA for an aliased column."""
        return cls(term=term, estimate=None, std_error=None, statistic=None, df=None,
                   p_value=None, conf_low=None, conf_high=None, aliased=True)


def with_aliased(fixed: Sequence[FixedEffect], names: Sequence[str],
                 aliased: Collection[str]) -> tuple[FixedEffect, ...]:
    """The fitted coefficients with a ``not_estimable`` row for each aliased column, in the
    order of the full model matrix (``names``), as R's ``summary`` lists them.

    Coefficients not named in ``names`` (none, for designs built here) keep their order at
    the end.
    """
    by_term = {fe.term: fe for fe in fixed}
    out = [FixedEffect.not_estimable(name) if name in aliased else by_term.pop(name)
           for name in names if name in aliased or name in by_term]
    return (*out, *by_term.values())


def estimates(fixed: Sequence[FixedEffect]) -> dict[str, float]:
    """The estimates of the estimable coefficients, by term (aliased ones left out)."""
    return {fe.term: fe.estimate for fe in fixed if fe.estimate is not None and not fe.aliased}


Cell = float | None
Square = tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class Covariance:
    """R's ``vcov(fit)``: the estimated covariance of the fixed effects, ``terms`` naming
    its rows and columns, and its correlation (``cov2cor``, R's "Correlation of Fixed
    Effects"). An aliased coefficient of an lm has a row and column of None (NA), as
    ``vcov.lm``'s ``complete = TRUE``; lme4 leaves aliased columns out of a mixed model."""

    terms: tuple[str, ...]
    matrix: Square
    correlation: Square

    @classmethod
    def of(cls, terms: Sequence[str], matrix: npt.NDArray[np.float64]) -> Covariance:
        """The covariance ``matrix`` of the coefficients ``terms`` (in that order)."""
        cov = np.asarray(matrix, dtype=np.float64)
        sd = np.sqrt(np.diag(cov))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = cov / np.outer(sd, sd)
        np.fill_diagonal(corr, 1.0)
        return cls(terms=tuple(terms), matrix=_square(cov), correlation=_square(corr))

    def with_aliased(self, names: Sequence[str], aliased: Collection[str]) -> Covariance:
        """The matrices over ``names`` (the full model matrix's columns), None in the rows
        and columns of the ``aliased`` ones, as R's ``vcov.lm``."""
        index = {term: i for i, term in enumerate(self.terms)}
        order = [None if name in aliased else index[name] for name in names
                 if name in aliased or name in index]

        def expand(square: Square) -> Square:
            return tuple(tuple(None if i is None or j is None else square[i][j] for j in order)
                         for i in order)
        return Covariance(terms=tuple(n for n in names if n in aliased or n in index),
                          matrix=expand(self.matrix), correlation=expand(self.correlation))

    def array(self) -> npt.NDArray[np.float64]:
        """The covariance as a float array (NaN for None)."""
        return np.array([[np.nan if v is None else v for v in row] for row in self.matrix],
                        dtype=np.float64).reshape(len(self.terms), len(self.terms))


def _square(matrix: npt.NDArray[np.float64]) -> Square:
    return tuple(tuple(float(v) if np.isfinite(v) else None for v in row) for row in matrix)


@dataclass(frozen=True)
class RandomEffectsTerm:
    """Variance components of one random-effects term (one bar after expansion):
    ``covariance`` is VarCorr's matrix σ² T Tᵀ (``as.data.frame(VarCorr(fit))``'s
    ``vcov``), empty in results stored before it was."""

    group: str
    terms: tuple[str, ...]
    std_dev: tuple[float, ...]
    variance: tuple[float, ...]
    correlation: tuple[tuple[float, ...], ...]
    n_levels: int
    covariance: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True)
class Metrics:
    n_obs: int
    loglik: float
    aic: float
    bic: float
    deviance: float
    sigma: float
    rmse: float
    df_residual: float
    reml_criterion: float | None = None
    r_squared: float | None = None
    adj_r_squared: float | None = None
    r2_marginal: float | None = None
    r2_conditional: float | None = None
    f_statistic: float | None = None
    n_dropped_missing: int = 0
    npar: int = 0
    # Studentized Breusch-Pagan test of constant variance (lm only; lmtest::bptest).
    bp_statistic: float | None = None
    bp_df: int | None = None
    bp_p_value: float | None = None


@dataclass(frozen=True)
class Convergence:
    """Optimizer summary, after MixedModels.jl's OptSummary."""

    converged: bool
    singular: bool
    optimizer: str
    iterations: int
    messages: tuple[str, ...] = ()
    initial_objective: float | None = None
    final_objective: float | None = None


@dataclass(frozen=True)
class ConditionalModes:
    """Conditional modes (BLUPs) and their conditional covariances of one term.

    ``modes[i][j]`` is level ``levels[i]``'s mode for ``terms[j]``; ``cond_cov[i]`` is that
    level's q × q conditional covariance (lme4's ``postVar`` slice ``[, , i]``) and
    ``cond_sd[i]`` the square roots of its diagonal. ``cond_cov`` is empty in fits stored
    before it was.
    """

    group: str
    terms: tuple[str, ...]
    levels: tuple[str, ...]
    modes: tuple[tuple[float, ...], ...]
    cond_sd: tuple[tuple[float, ...], ...]
    cond_cov: tuple[tuple[tuple[float, ...], ...], ...] = ()


@dataclass(frozen=True)
class GroupFit:
    """One level's separate fit in an ``lm_by_group`` model (lme4's ``lmList``).

    A level whose rows cannot be fitted (too few rows, singular design) has ``error`` set,
    no fixed effects and ``metrics`` None; it does not fail the model.
    """

    level: str
    n_obs: int
    fixed_effects: tuple[FixedEffect, ...]
    metrics: Metrics | None
    error: str | None = None


@dataclass(frozen=True)
class FitResult:
    kind: ModelKind
    method: str
    fixed_effects: tuple[FixedEffect, ...]
    metrics: Metrics
    convergence: Convergence
    residual_std_dev: float
    random_effects: tuple[RandomEffectsTerm, ...] = ()
    conditional_modes: tuple[ConditionalModes, ...] = ()
    theta: tuple[float, ...] = ()
    fit_seconds: float = 0.0
    messages: tuple[str, ...] = field(default=())
    groups: tuple[GroupFit, ...] = ()
    vcov: Covariance | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``result`` object of the API contract (without the conditional modes)."""
        # the modes (with their conditional covariances) left out before the deep copy
        out = asdict(replace(self, conditional_modes=()))
        del out["conditional_modes"]
        del out["kind"]
        del out["method"]
        return out
