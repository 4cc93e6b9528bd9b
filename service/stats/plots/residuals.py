"""Residual plots: against fitted values, by group, and normal Q-Q (as R's plot.lm)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import stats
from statsmodels.nonparametric.smoothers_lowess import lowess

from service.stats.errors import StatsError
from service.stats.plots._figure import (
    POINT_COLOUR,
    REFERENCE_COLOUR,
    SMOOTH_COLOUR,
    check_format,
    new_figure,
    set_title,
    style_axes,
    to_bytes,
)

# Fewer points than this make a lowess curve more misleading than helpful.
_MIN_POINTS_FOR_SMOOTH = 5


def residuals_vs_fitted(
    fitted: npt.ArrayLike,
    residuals: npt.ArrayLike,
    *,
    model: str,
    fmt: str = "png",
    ylabel: str = "Residuals",
) -> bytes:
    """Residuals against fitted values, with a zero line and a lowess smooth.

    Parameters
    ----------
    fitted, residuals : array_like
        One value per observation.
    model : str
        What model this is (its formula, and method), shown in the title.
    fmt : {"png", "svg"}
        Image format.
    ylabel : str
        Axis label for the residuals (say "Standardized residuals" when they are).

    Returns
    -------
    bytes
        The encoded image.
    """
    check_format(fmt)
    x, y = _paired(fitted, residuals)
    fig = new_figure()
    ax = fig.add_subplot()
    ax.axhline(0.0, color=REFERENCE_COLOUR, linestyle="--", linewidth=1)
    ax.scatter(x, y, s=16, color=POINT_COLOUR, alpha=0.7, edgecolors="none")
    if x.size >= _MIN_POINTS_FOR_SMOOTH and np.ptp(x) > 0:
        smooth = lowess(y, x, frac=2 / 3, it=3, return_sorted=True)
        ax.plot(smooth[:, 0], smooth[:, 1], color=SMOOTH_COLOUR, linewidth=1.5,
                label="lowess smooth")
        ax.legend(fontsize=8, loc="best", frameon=False)
    style_axes(ax, "Fitted values", ylabel)
    set_title(fig, "Residuals vs fitted", model)
    return to_bytes(fig, fmt)


def residuals_by_group(
    residuals: npt.ArrayLike,
    groups: Sequence[object],
    *,
    group_name: str,
    model: str,
    fmt: str = "png",
    ylabel: str = "Residuals",
) -> bytes:
    """Box plots of the residuals per level of a grouping factor, levels sorted.

    Parameters
    ----------
    residuals : array_like
        One residual per observation.
    groups : sequence
        The observation's level of the grouping factor (same length).
    group_name : str
        The grouping factor's name, for the axis label.
    model : str
        What model this is, shown in the title.
    fmt : {"png", "svg"}
        Image format.
    ylabel : str
        Axis label for the residuals.

    Returns
    -------
    bytes
        The encoded image.
    """
    check_format(fmt)
    r = np.asarray(residuals, dtype=np.float64)
    labels = np.asarray([str(g) for g in groups], dtype=object)
    if labels.shape != r.shape:
        raise StatsError("residuals and groups must have the same length.")
    levels = sorted_levels(groups)
    data = [r[labels == level] for level in levels]
    many = len(levels) > 12
    fig = new_figure(width=max(6.4, min(16.0, 0.35 * len(levels) + 2)))
    ax = fig.add_subplot()
    ax.axhline(0.0, color=REFERENCE_COLOUR, linestyle="--", linewidth=1)
    ax.boxplot(data, tick_labels=levels, widths=0.6, patch_artist=True,
               boxprops={"facecolor": "#d6e4f0", "edgecolor": POINT_COLOUR},
               medianprops={"color": SMOOTH_COLOUR}, showfliers=False)
    # The points themselves, jittered, show group sizes that a box hides.
    rng = np.random.default_rng(0)
    for i, values in enumerate(data, start=1):
        jitter = rng.uniform(-0.15, 0.15, size=values.size)
        ax.scatter(i + jitter, values, s=8, color=POINT_COLOUR, alpha=0.5, edgecolors="none")
    style_axes(ax, group_name, ylabel)
    if many:
        ax.tick_params(axis="x", labelrotation=90)
    set_title(fig, f"Residuals by {group_name}", model)
    return to_bytes(fig, fmt)


def normal_qq(
    residuals: npt.ArrayLike,
    *,
    model: str,
    fmt: str = "png",
    ylabel: str = "Standardized residuals",
) -> bytes:
    """Normal Q-Q plot with R's plotting positions and its quartile reference line.

    Theoretical quantiles are ``qnorm(ppoints(n))`` and the line passes through the first
    and third quartiles of both distributions, as R's ``qqnorm`` and ``qqline``.

    Parameters
    ----------
    residuals : array_like
        Residuals (standardized, preferably).
    model : str
        What model this is, shown in the title.
    fmt : {"png", "svg"}
        Image format.
    ylabel : str
        Axis label for the sample quantiles.

    Returns
    -------
    bytes
        The encoded image.
    """
    check_format(fmt)
    r = np.asarray(residuals, dtype=np.float64)
    r = np.sort(r[np.isfinite(r)])
    if r.size == 0:
        raise StatsError("A Q-Q plot needs at least one finite residual.")
    theoretical = stats.norm.ppf(ppoints(r.size))
    fig = new_figure(width=5.6, height=5.2)
    ax = fig.add_subplot()
    ax.scatter(theoretical, r, s=16, color=POINT_COLOUR, alpha=0.7, edgecolors="none")
    q_sample = np.quantile(r, [0.25, 0.75])
    q_theory = stats.norm.ppf([0.25, 0.75])
    slope = (q_sample[1] - q_sample[0]) / (q_theory[1] - q_theory[0])
    intercept = q_sample[0] - slope * q_theory[0]
    ax.axline((0.0, float(intercept)), slope=float(slope), color=SMOOTH_COLOUR, linewidth=1.2)
    style_axes(ax, "Theoretical quantiles (standard normal)", ylabel)
    set_title(fig, "Normal Q-Q", model)
    return to_bytes(fig, fmt)


def ppoints(n: int) -> npt.NDArray[np.float64]:
    """R's ``ppoints``: ``(i - a) / (n + 1 - 2a)`` with ``a = 3/8`` for n ≤ 10, else 1/2."""
    a = 3 / 8 if n <= 10 else 0.5
    return (np.arange(1, n + 1, dtype=np.float64) - a) / (n + 1 - 2 * a)


def sorted_levels(groups: Sequence[object]) -> list[str]:
    """Distinct levels as text, in natural order (numbers numerically)."""
    distinct = list(dict.fromkeys(groups))
    try:
        ordered = sorted(distinct)  # type: ignore[type-var]
    except TypeError:
        ordered = sorted(distinct, key=str)
    return list(dict.fromkeys(str(g) for g in ordered))


def _paired(
    a: npt.ArrayLike, b: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise StatsError("Expected two one-dimensional arrays of the same length.")
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        raise StatsError("Nothing to plot: no finite values.")
    return x[keep], y[keep]
