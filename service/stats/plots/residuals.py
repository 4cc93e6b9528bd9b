"""Residual plots: against fitted values, by group, and normal Q-Q (as R's plot.lm)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import stats
from statsmodels.nonparametric.smoothers_lowess import lowess

from service.stats.errors import StatsError
from service.stats.plots._figure import (
    MAX_POINTS,
    POINT_COLOUR,
    REFERENCE_COLOUR,
    SMOOTH_BINS,
    SMOOTH_COLOUR,
    binned_means,
    check_format,
    literal,
    new_figure,
    points_note,
    sample_rows,
    set_title,
    style_axes,
    to_bytes,
)

# Fewer points than this make a lowess curve more misleading than helpful.
_MIN_POINTS_FOR_SMOOTH = 5
# A grouping factor with more levels than this shows the levels with most rows, one box
# each: thousands of boxes are neither readable nor quick to draw.
MAX_BOXES = 30


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
    shown = sample_rows(x.size)
    fig = new_figure()
    ax = fig.add_subplot()
    ax.axhline(0.0, color=REFERENCE_COLOUR, linestyle="--", linewidth=1)
    px, py = (x, y) if shown is None else (x[shown], y[shown])
    ax.scatter(px, py, s=16 if shown is None else 6, color=POINT_COLOUR,
               alpha=0.7 if shown is None else 0.3, edgecolors="none")
    note = None
    if x.size >= _MIN_POINTS_FOR_SMOOTH and np.ptp(x) > 0:
        if shown is None:
            # R's lowess (plot.lm's panel.smooth): f = 2/3, 3 robustness iterations, and
            # its default delta of 1% of the range (local fits at ~100 x values,
            # interpolated between), which also keeps 20,000 points to milliseconds.
            smooth = lowess(y, x, frac=2 / 3, it=3, delta=0.01 * float(np.ptp(x)),
                            return_sorted=True)
            sx, sy, label = smooth[:, 0], smooth[:, 1], "lowess smooth"
        else:
            sx, sy = binned_means(x, y)
            label = f"means of {SMOOTH_BINS} equal-count bins"
        ax.plot(sx, sy, color=SMOOTH_COLOUR, linewidth=1.5, label=label)
        ax.legend(fontsize=8, loc="best", frameon=False)
    if shown is not None:
        note = (points_note(shown.size, x.size, "a random sample") + "; red line: means of "
                f"{SMOOTH_BINS} equal-count bins of all points")
    style_axes(ax, "Fitted values", ylabel)
    set_title(fig, "Residuals vs fitted", model, note)
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
    if len(groups) != r.size or r.ndim != 1:
        raise StatsError("residuals and groups must have the same length.")
    levels = sorted_levels(groups)
    index = {level: i for i, level in enumerate(levels)}
    codes = np.fromiter((index[str(g)] for g in groups), dtype=np.intp, count=r.size)
    counts = np.bincount(codes, minlength=len(levels))
    # One sort splits the residuals by level (a mask per level costs levels × rows).
    by_level = np.split(r[np.argsort(codes, kind="stable")], np.cumsum(counts)[:-1])
    notes = []
    if len(levels) > MAX_BOXES:
        most = np.argsort(-counts, kind="stable")[:MAX_BOXES]  # ties: natural order
        kept = np.sort(most)
        notes.append(f"the {MAX_BOXES} of {len(levels):,} levels with most rows shown "
                     f"({int(counts[kept].sum()):,} of {r.size:,} rows)")
    else:
        kept = np.arange(len(levels))
    data = [by_level[i] for i in kept]
    names = [literal(levels[i]) for i in kept]
    many = len(kept) > 12
    fig = new_figure(width=max(6.4, min(16.0, 0.35 * len(kept) + 2)))
    ax = fig.add_subplot()
    ax.axhline(0.0, color=REFERENCE_COLOUR, linestyle="--", linewidth=1)
    ax.boxplot(data, tick_labels=names, widths=0.6, patch_artist=True,
               boxprops={"facecolor": "#d6e4f0", "edgecolor": POINT_COLOUR},
               medianprops={"color": SMOOTH_COLOUR}, showfliers=False)
    # The points themselves, jittered, show group sizes that a box hides.
    rng = np.random.default_rng(0)
    positions = np.repeat(np.arange(1, len(data) + 1, dtype=np.float64),
                          [values.size for values in data])
    values = np.concatenate(data) if data else np.empty(0)
    positions += rng.uniform(-0.15, 0.15, size=positions.size)
    shown = sample_rows(values.size)
    if shown is not None:
        notes.append(points_note(shown.size, values.size, "a random sample; the boxes use "
                                 "all"))
        positions, values = positions[shown], values[shown]
    ax.scatter(positions, values, s=8 if shown is None else 4, color=POINT_COLOUR,
               alpha=0.5 if shown is None else 0.25, edgecolors="none")
    style_axes(ax, group_name, ylabel)
    if many:
        ax.tick_params(axis="x", labelrotation=90)
    set_title(fig, f"Residuals by {group_name}", model, "; ".join(notes) or None)
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
    note = None
    if r.size > MAX_POINTS:
        # Evenly spaced order statistics, the extremes included: the same curve, drawn
        # with fewer points (a random sample would thin out the tails).
        shown = np.unique(np.linspace(0, r.size - 1, MAX_POINTS).round().astype(np.intp))
        note = points_note(shown.size, r.size, "evenly spaced quantiles, both extremes "
                           "included")
        px, py = theoretical[shown], r[shown]
    else:
        px, py = theoretical, r
    fig = new_figure(width=5.6, height=5.2)
    ax = fig.add_subplot()
    ax.scatter(px, py, s=16 if note is None else 6, color=POINT_COLOUR, alpha=0.7,
               edgecolors="none")
    q_sample = np.quantile(r, [0.25, 0.75])
    q_theory = stats.norm.ppf([0.25, 0.75])
    slope = (q_sample[1] - q_sample[0]) / (q_theory[1] - q_theory[0])
    intercept = q_sample[0] - slope * q_theory[0]
    ax.axline((0.0, float(intercept)), slope=float(slope), color=SMOOTH_COLOUR, linewidth=1.2)
    style_axes(ax, "Theoretical quantiles (standard normal)", ylabel)
    set_title(fig, "Normal Q-Q", model, note)
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
