"""The data with the fitted line(s): one predictor on x, the response on y.

The lines are drawn through the model's own fitted values at the observed x, sorted by x
within each group, so no new prediction is needed: for a model linear in its one numeric
predictor this is exactly the fitted line over the range of the data (and a curve for
``poly(x, 2)`` and the like).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes

from service.stats.errors import StatsError
from service.stats.plots._figure import (
    POINT_COLOUR,
    check_format,
    group_colours,
    new_figure,
    set_title,
    style_axes,
    to_bytes,
)
from service.stats.plots.residuals import sorted_levels

# Beyond this many groups a legend hides the data; the colours still tell groups apart.
_MAX_LEGEND_ENTRIES = 12


def data_with_fit(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    fitted: npt.ArrayLike,
    *,
    x_label: str,
    y_label: str,
    model: str,
    groups: Sequence[object] | None = None,
    group_name: str | None = None,
    population: npt.ArrayLike | None = None,
    fmt: str = "png",
) -> bytes:
    """Scatter of the data with the fitted line, one line per group when grouped.

    Parameters
    ----------
    x, y : array_like
        The numeric predictor and the response, one value per observation.
    fitted : array_like
        The model's fitted values for those observations (for a mixed model including
        the conditional modes, for a per-group model each group's own fit).
    x_label, y_label : str
        Axis labels (the predictor's and the response's names).
    model : str
        What model this is, shown in the title.
    groups : sequence, optional
        Each observation's group: points are coloured and lines drawn per group.
    group_name : str, optional
        The grouping factor's name, for the legend title.
    population : array_like, optional
        Fitted values without random effects (X β̂), drawn as a dashed black line: the
        population line that a mixed model's group lines are pooled towards.
    fmt : {"png", "svg"}
        Image format.

    Returns
    -------
    bytes
        The encoded image.
    """
    check_format(fmt)
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    fs = np.asarray(fitted, dtype=np.float64)
    if not (xs.shape == ys.shape == fs.shape) or xs.ndim != 1:
        raise StatsError("x, y and fitted must be one-dimensional and of the same length.")
    labels = None if groups is None else np.asarray([str(g) for g in groups], dtype=object)
    if labels is not None and labels.shape != xs.shape:
        raise StatsError("groups must have one entry per observation.")

    fig = new_figure(width=7.2, height=5.0)
    ax = fig.add_subplot()
    if labels is None or groups is None:
        ax.scatter(xs, ys, s=16, color=POINT_COLOUR, alpha=0.6, edgecolors="none",
                   label="data")
        _line(ax, xs, fs, color="#c0392b", label="fitted")
    else:
        levels = sorted_levels(groups)
        for level, colour in zip(levels, group_colours(len(levels)), strict=True):
            mask = labels == level
            ax.scatter(xs[mask], ys[mask], s=16, color=colour, alpha=0.6, edgecolors="none")
            _line(ax, xs[mask], fs[mask], color=colour, label=level)
    if population is not None:
        pop = np.asarray(population, dtype=np.float64)
        if pop.shape != xs.shape:
            raise StatsError("population must have one value per observation.")
        _line(ax, xs, pop, color="black", label="population (fixed effects)", dashed=True)
    handles, names = ax.get_legend_handles_labels()
    if len(handles) > _MAX_LEGEND_ENTRIES + 1:
        # Too many groups to list: keep only the population line's entry, if any.
        keep = [i for i, label in enumerate(names) if label.startswith("population")]
        handles, names = [handles[i] for i in keep], [names[i] for i in keep]
    if handles:
        listed = labels is not None and any(not n.startswith("population") for n in names)
        ax.legend(handles, names, title=group_name if listed else None, fontsize=8,
                  title_fontsize=8, frameon=False, loc="center left",
                  bbox_to_anchor=(1.0, 0.5))
    style_axes(ax, x_label, y_label)
    what = "Data and fitted line" if labels is None else f"Data and fitted lines by {group_name}"
    set_title(fig, what, model)
    return to_bytes(fig, fmt)


def _line(ax: Axes, x: npt.NDArray[np.float64], f: npt.NDArray[np.float64], *,
          color: object, label: str, dashed: bool = False) -> None:
    keep = np.isfinite(x) & np.isfinite(f)
    order = np.argsort(x[keep], kind="stable")
    ax.plot(x[keep][order], f[keep][order], color=color, label=label,
            linewidth=2.0 if dashed else 1.6, linestyle="--" if dashed else "-")
