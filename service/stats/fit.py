"""The one entry point the job runner calls: formula text + data -> a complete fitted model.

It follows lme4's steps by name: parse and build the design, then hand it to the engine
for the model kind (OLS, per-group OLS or the mixed-model engine, which makes the
objective, optimizes and packages the result), then record what prediction needs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import pandas as pd

from service.stats.design import Design, build_design
from service.stats.errors import FitError
from service.stats.formula import parse_formula
from service.stats.formula.tree import Formula, with_contrasts, with_weights
from service.stats.lmlist import GroupedFit, fit_groups
from service.stats.lmm import fit_lmm
from service.stats.ols import fit_ols
from service.stats.predict import make_by_group_state, make_prediction_state
from service.stats.prediction_intervals import uncertainty_state
from service.stats.results import FitResult, estimates, with_aliased
from service.stats.threads import single_threaded_blas

Method = Literal["REML", "ML"]


@dataclass(frozen=True)
class FittedModel:
    """A fit's result document plus the JSON state that predictions need."""

    result: FitResult
    prediction_state: dict[str, Any]


def fit_model(formula: str, data: pd.DataFrame, method: str = "REML",
              pool: bool = True, contrasts: Mapping[str, str] | None = None,
              weights: str | None = None) -> FittedModel:
    """Fit ``formula`` to ``data``.

    Parameters
    ----------
    formula
        Model formula as written by the user (R/lme4 syntax).
    data
        The dataset.
    method
        ``"REML"`` or ``"ML"`` for mixed models; ignored by least squares fits.
    pool
        Per-group fits (``y ~ x | g``): standard errors and tests from the pooled residual
        SD, as lme4's ``summary(lmList(...))`` by default; ignored by other models.
    contrasts
        The coding of factor columns of the fixed part (``{"recipe": "contr.sum"}``), as
        the ``contrasts`` argument of ``lm`` and ``lmer``; treatment for the others.
    weights
        The column of prior weights (``lm``'s and ``lmer``'s ``weights``), or None.

    Returns
    -------
    FittedModel
        The result and the prediction state (encoder and estimates as plain JSON).

    Raises
    ------
    service.stats.errors.StatsError
        For a formula or data that cannot be fitted.
    """
    started = time.perf_counter()
    if method not in ("REML", "ML"):
        raise FitError(f"method must be 'REML' or 'ML', not {method!r}")
    with single_threaded_blas():
        parsed = with_weights(with_contrasts(parse_formula(formula), contrasts), weights)
        fitted = _fit_model(parsed, data, method, pool)
    # the engine's whole fit, formula to result, as lme4's lmer is timed in R (its model
    # frame and design included); every kind of model, least squares too
    return replace(fitted, result=replace(fitted.result,
                                          fit_seconds=time.perf_counter() - started))


def _fit_model(parsed: Formula, data: pd.DataFrame, method: str, pool: bool) -> FittedModel:
    if parsed.by_group is not None:
        grouped = fit_groups(parsed, data, pool)
        state = make_by_group_state(parsed.by_group, grouped.designs, grouped.result.groups,
                                    grouped.own_fits)
        return FittedModel(result=_groups_with_aliased(grouped), prediction_state=state)
    design = build_design(parsed, data)
    if parsed.kind == "lm":
        result = fit_ols(design)
    else:
        result = fit_lmm(design, "ML" if method == "ML" else "REML")
    state = make_prediction_state(design, estimates(result.fixed_effects),
                                  result.conditional_modes, uncertainty_state(result))
    return FittedModel(result=_with_aliased(result, design), prediction_state=state)


def _with_aliased(result: FitResult, design: Design) -> FitResult:
    """The result with an NA row for each aliased column, in its place (R's ``summary``);
    the engines fit the design without those columns."""
    if not design.dropped_aliased:
        return result
    fixed = with_aliased(result.fixed_effects, design.encoder.all_fixed_names,
                         design.dropped_aliased)
    vcov = result.vcov
    if vcov is not None and result.kind == "lm":
        # R's vcov.lm (complete = TRUE) has NA rows for them; lme4 drops them from a merMod
        vcov = vcov.with_aliased(design.encoder.all_fixed_names, design.dropped_aliased)
    return replace(result, fixed_effects=fixed, vcov=vcov)


def _groups_with_aliased(grouped: GroupedFit) -> FitResult:
    groups = []
    for group in grouped.result.groups:
        design = grouped.designs.get(group.level)
        if design is not None and design.dropped_aliased:
            group = replace(group, fixed_effects=with_aliased(
                group.fixed_effects, design.encoder.all_fixed_names, design.dropped_aliased))
        groups.append(group)
    return replace(grouped.result, groups=tuple(groups))

