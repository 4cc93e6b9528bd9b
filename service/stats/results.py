"""Immutable fit results, complete when created.

``FitResult.to_dict()`` is the ``result`` object of the v1 API contract (DESIGN.md); the
conditional modes and the prediction state are served by their own endpoints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ModelKind = Literal["lm", "lmm", "lm_by_group"]


@dataclass(frozen=True)
class FixedEffect:
    term: str
    estimate: float
    std_error: float
    statistic: float
    df: float | None
    p_value: float
    conf_low: float
    conf_high: float


@dataclass(frozen=True)
class RandomEffectsTerm:
    """Variance components of one random-effects term (one bar after expansion)."""

    group: str
    terms: tuple[str, ...]
    std_dev: tuple[float, ...]
    variance: tuple[float, ...]
    correlation: tuple[tuple[float, ...], ...]
    n_levels: int


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
    """Conditional modes (BLUPs) and conditional standard deviations of one term.

    ``modes[i][j]`` is level ``levels[i]``'s mode for ``terms[j]``.
    """

    group: str
    terms: tuple[str, ...]
    levels: tuple[str, ...]
    modes: tuple[tuple[float, ...], ...]
    cond_sd: tuple[tuple[float, ...], ...]


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

    def to_dict(self) -> dict[str, Any]:
        """The ``result`` object of the API contract (without the conditional modes)."""
        out = asdict(self)
        del out["conditional_modes"]
        del out["kind"]
        del out["method"]
        return out
