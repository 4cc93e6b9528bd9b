"""The entry point of the confidence intervals that refit a model: formula text + data ->
lme4's profile or parametric bootstrap intervals (``confint.merMod``).

Called only from the interval job (in a worker's child process), as ``fit.fit_model`` is
from the fit job: it builds the design the fit built from the same formula and data, then
profiles (``profile``) or bootstraps (``bootstrap``) it. Wald intervals need no refit and
are in ``inference``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import pandas as pd

from service.stats.bootstrap import bootstrap_intervals, parametric_bootstrap
from service.stats.design import build_design
from service.stats.formula import parse_formula
from service.stats.formula.tree import with_contrasts, with_weights
from service.stats.inference import InferenceError, Intervals
from service.stats.lmm import fit_lmm
from service.stats.profile import profile_intervals
from service.stats.threads import single_threaded_blas

RefitMethod = Literal["profile", "boot"]
Report = Callable[[int, int], None]


def refit_intervals(formula: str, data: pd.DataFrame, fit_method: str, method: RefitMethod,
                    level: float, *, nsim: int = 0, seed: int = 0,
                    report: Report | None = None,
                    contrasts: Mapping[str, str] | None = None,
                    weights: str | None = None) -> Intervals:
    """Profile or parametric bootstrap intervals of a mixed model.

    Parameters
    ----------
    formula, data
        The model's formula and dataset, as fitted.
    fit_method
        The fit's ``"REML"`` or ``"ML"`` (the bootstrap refits by it; the profile is of the
        ML deviance whichever it is, as lme4's).
    method
        ``"profile"`` or ``"boot"`` (percentile intervals).
    level
        Confidence level in (0, 1).
    nsim, seed
        The bootstrap's simulations and seed (boot only).
    report
        Progress: (parameters profiled, parameters) or (simulations done, nsim).
    contrasts
        The model's coding of factor columns (``fit_model``'s), so the fixed effects are
        the fitted ones.
    weights
        The model's column of prior weights (``fit_model``'s), or None.

    Returns
    -------
    Intervals
        Rows as ``confint(fit, oldNames = FALSE)``.

    Raises
    ------
    service.stats.errors.StatsError
        For a model that is not a mixed model, or intervals that cannot be computed.
    """
    parsed = with_weights(with_contrasts(parse_formula(formula), contrasts), weights)
    if parsed.kind != "lmm" or parsed.by_group is not None:
        raise InferenceError("Profile and bootstrap intervals are for mixed models; a least "
                             "squares model's intervals are exact t intervals (method "
                             "'Wald', R's confint.lm).")
    with single_threaded_blas():
        design = build_design(parsed, data)
        if method == "profile":
            return profile_intervals(design, level, report)
        result = fit_lmm(design, "ML" if fit_method == "ML" else "REML")
        sample = parametric_bootstrap(design, result, nsim, seed, report)
        return bootstrap_intervals(sample, level)
