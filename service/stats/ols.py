"""Ordinary least squares with R's ``lm`` numbers.

The fit itself is statsmodels' QR-based OLS; what this module adds is R's conventions
for the summary quantities, which differ from statsmodels' defaults in places:

- ``logLik.lm`` counts σ as a parameter, so AIC and BIC use ``k = p + 1``;
- ``summary.lm`` computes R² against ``sum(y²)`` when the model has no intercept,
  and reports no F statistic for an intercept-only model;
- ``deviance.lm`` is the residual sum of squares.

The metrics also carry the studentized Breusch-Pagan test (``lmtest::bptest``'s default).

With prior weights the design's y and X are already scaled by √w (``build_design``), so the
least squares fit is R's ``lm.wfit``; the summaries are R's weighted ones: the
log-likelihood gains Σ log(w) / 2, R² is against the weighted mean, the RMSE is of the
residuals in the data's scale. ``bptest`` refits without the weights, so no test is
reported for a weighted fit.
"""

from __future__ import annotations

import math

import numpy as np
import statsmodels.api as sm

from service.stats import tdist
from service.stats.design.types import Design, FloatArray
from service.stats.diagnostics import BreuschPagan, breusch_pagan
from service.stats.errors import FitError
from service.stats.results import (
    Convergence,
    Covariance,
    FitResult,
    FixedEffect,
    Metrics,
    estimates,
)

INTERCEPT = "(Intercept)"
OPTIMIZER = "QR (statsmodels OLS)"
CONF_LEVEL = 0.95

# Relative size of the residual sum of squares below which the fit is treated as exact:
# standard errors would be zero or noise, as R's "essentially perfect fit" warning says.
_PERFECT_FIT_RTOL = 1e-24


def fit_ols(design: Design) -> FitResult:
    """Fit ``y = X β + ε`` by ordinary least squares, reporting what R's ``lm`` reports.

    Parameters
    ----------
    design : Design
        Response and fixed-effects matrix; random-effects blocks must be empty.

    Returns
    -------
    FitResult
        ``kind="lm"``, ``method="OLS"``; coefficients with t tests on ``n - p`` degrees of
        freedom and 95% t intervals (R's ``confint``), and the metrics of ``summary.lm``
        and ``logLik.lm``.

    Raises
    ------
    FitError
        Too few rows for the number of coefficients, a rank-deficient X, or residuals that
        are all zero (standard errors undefined).
    """
    y, X = _checked_arrays(design)
    n, p = X.shape
    ols = sm.OLS(y, X).fit(method="qr")

    beta = np.asarray(ols.params, dtype=np.float64)
    resid = y - X @ beta
    rss = float(resid @ resid)
    has_intercept = INTERCEPT in design.fixed_names
    if has_intercept and np.ptp(design.unweighted(y)) == 0.0:
        # the intercept alone fits every row and R² would divide zero by zero
        raise FitError(
            f"The response {design.response_name} is constant ({y[0]:g} in all {n} rows), so "
            "there is no variation for the model to explain and standard errors, t statistics "
            "and p-values are undefined."
        )
    tss = _total_sum_of_squares(design, y, has_intercept)
    if rss == 0.0 or rss <= _PERFECT_FIT_RTOL * tss:
        raise FitError(
            f"The model fits the {n} rows exactly (all residuals are zero), so standard "
            "errors, t statistics and p-values are undefined. Check that the response is "
            "not also among the predictors."
        )

    df_resid = n - p
    sigma2 = rss / df_resid
    vcov = np.asarray(ols.normalized_cov_params, dtype=np.float64) * sigma2
    se = np.sqrt(np.diag(vcov))
    t = beta / se
    p_values = tdist.two_sided_p(t, float(df_resid))
    t_crit = tdist.quantile(0.5 + CONF_LEVEL / 2, float(df_resid))
    fixed = tuple(
        FixedEffect(
            term=name,
            estimate=float(b),
            std_error=float(s),
            statistic=float(tt),
            df=float(df_resid),
            p_value=float(pv),
            conf_low=float(b - t_crit * s),
            conf_high=float(b + t_crit * s),
        )
        for name, b, s, tt, pv in zip(design.fixed_names, beta, se, t, p_values, strict=True)
    )

    bp = None if design.weights is not None else breusch_pagan(X, resid,
                                                                has_intercept=has_intercept)
    metrics = _metrics(design, rss, tss, has_intercept, bp, resid)
    return FitResult(
        kind="lm",
        method="OLS",
        fixed_effects=fixed,
        metrics=metrics,
        convergence=Convergence(
            converged=True, singular=False, optimizer=OPTIMIZER, iterations=0
        ),
        residual_std_dev=metrics.sigma,
        messages=tuple(design.messages),
        vcov=Covariance.of(design.fixed_names, vcov),
    )


def fitted_values(design: Design, result: FitResult) -> FloatArray:
    """``X β̂`` for a design whose columns are named like the result's coefficients.

    Parameters
    ----------
    design : Design
        Fitting or prediction design (``fixed_names`` in any order).
    result : FitResult
        An ``lm`` fit whose fixed effects cover ``design.fixed_names``.

    Returns
    -------
    ndarray
        One fitted value per design row.
    """
    known = estimates(result.fixed_effects)  # aliased columns are not in the design
    missing = [name for name in design.fixed_names if name not in known]
    if missing:
        raise FitError(f"The fit has no coefficient for the design columns: {', '.join(missing)}")
    beta = np.array([known[name] for name in design.fixed_names], dtype=np.float64)
    return np.asarray(design.X @ beta, dtype=np.float64)


def _checked_arrays(design: Design) -> tuple[FloatArray, FloatArray]:
    if design.y is None:
        raise FitError("The design has no response, so it cannot be fitted.")
    if design.random:
        raise FitError("OLS cannot fit random-effects terms; use the mixed-model engine.")
    X = np.asarray(design.X, dtype=np.float64)
    y = np.asarray(design.y, dtype=np.float64)
    n, p = X.shape
    if p == 0:
        raise FitError("The model has no coefficients to estimate (no intercept, no terms).")
    if n <= p:
        raise FitError(
            f"{n} rows are too few to estimate {p} coefficients with a residual variance: "
            f"OLS needs more rows than coefficients (here at least {p + 1})."
        )
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise FitError("The design contains infinite or missing values.")
    rank = int(np.linalg.matrix_rank(X))
    if rank < p:
        raise FitError(
            f"The fixed-effects matrix has rank {rank} but {p} columns "
            f"({', '.join(design.fixed_names)}): some coefficients are not estimable "
            "from these rows (a predictor is constant or a combination of others)."
        )
    return y, X


def _total_sum_of_squares(design: Design, y: FloatArray, has_intercept: bool) -> float:
    # summary.lm: centred about the (weighted) mean with an intercept, about zero without
    # one; y is √w times the response, so Σ w (response - mean)² is Σ (y - √w mean)².
    if not has_intercept:
        return float(y @ y)
    if design.weights is None:
        centred = y - y.mean()
    else:
        root = np.sqrt(design.weights)
        centred = y - root * (float(root @ y) / float(design.weights.sum()))
    return float(centred @ centred)


def _metrics(design: Design, rss: float, tss: float, has_intercept: bool,
             bp: BreuschPagan | None, resid: FloatArray) -> Metrics:
    n, p = design.X.shape
    df_resid = n - p
    df_int = 1 if has_intercept else 0
    sigma = math.sqrt(rss / df_resid)
    # logLik.lm; sigma is counted among the parameters.
    loglik = 0.5 * (design.log_det_weights
                    - n * (math.log(2 * math.pi) + 1 - math.log(n) + math.log(rss)))
    k = p + 1
    raw = design.unweighted(resid)
    rmse = math.sqrt(float(raw @ raw) / n)
    r_squared: float | None
    adj_r_squared: float | None
    f_statistic: float | None
    if p > df_int:
        r_squared = 1 - rss / tss
        adj_r_squared = 1 - (1 - r_squared) * (n - df_int) / df_resid
        f_statistic = ((tss - rss) / (p - df_int)) / (rss / df_resid)
    else:
        # summary.lm of an intercept-only model: R² = 0 and no F test.
        r_squared, adj_r_squared, f_statistic = 0.0, 0.0, None
    return Metrics(
        n_obs=n,
        loglik=loglik,
        aic=-2 * loglik + 2 * k,
        bic=-2 * loglik + math.log(n) * k,
        deviance=rss,
        sigma=sigma,
        rmse=rmse,
        df_residual=float(df_resid),
        r_squared=r_squared,
        adj_r_squared=adj_r_squared,
        f_statistic=f_statistic,
        n_dropped_missing=design.n_dropped_missing,
        npar=k,
        bp_statistic=bp.statistic if bp else None,
        bp_df=bp.df if bp else None,
        bp_p_value=bp.p_value if bp else None,
    )
