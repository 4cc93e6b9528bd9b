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
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from service.stats.errors import StatsError
from service.stats.plots._figure import (
    POINT_COLOUR,
    check_format,
    group_colours,
    literal,
    new_figure,
    points_note,
    sample_rows,
    set_title,
    style_axes,
    to_bytes,
)
from service.stats.plots.residuals import sorted_levels

# Beyond this many groups a legend hides the data; the colours still tell groups apart.
_MAX_LEGEND_ENTRIES = 12
# A line needs no more vertices than this to look exact; a line through 100,000 fitted
# values would make the SVG megabytes long.
_MAX_LINE_VERTICES = 2_000


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
    if groups is not None and len(groups) != xs.size:
        raise StatsError("groups must have one entry per observation.")
    pop = None if population is None else np.asarray(population, dtype=np.float64)
    if pop is not None and pop.shape != xs.shape:
        raise StatsError("population must have one value per observation.")

    shown = sample_rows(xs.size)
    note = None if shown is None else points_note(
        shown.size, xs.size, "a random sample; the lines go through all")
    size, alpha = (16, 0.6) if shown is None else (6, 0.3)
    fig = new_figure(width=7.2, height=5.0)
    ax = fig.add_subplot()
    # Legend entries are kept here, not asked of the axes: matplotlib leaves out labels
    # that start with "_", and a level may.
    entries: list[tuple[Artist, str]] = []
    if groups is None:
        px, py = (xs, ys) if shown is None else (xs[shown], ys[shown])
        entries.append((ax.scatter(px, py, s=size, color=POINT_COLOUR, alpha=alpha,
                                   edgecolors="none"), "data"))
        entries.append((_line(ax, xs, fs, color="#c0392b"), "fitted"))
    else:
        levels = sorted_levels(groups)
        index = {level: i for i, level in enumerate(levels)}
        codes = np.fromiter((index[str(g)] for g in groups), dtype=np.intp, count=xs.size)
        colours = np.asarray(group_colours(len(levels)))
        pick = slice(None) if shown is None else shown
        ax.scatter(xs[pick], ys[pick], s=size, c=colours[codes[pick]], alpha=alpha,
                   edgecolors="none")
        # One sort by (group, x) gives every group's line.
        order = np.lexsort((xs, codes))
        bounds = np.cumsum(np.bincount(codes, minlength=len(levels)))[:-1]
        parts = zip(np.split(order, bounds), levels, colours, strict=True)
        if len(levels) <= _MAX_LEGEND_ENTRIES:
            for rows, level, colour in parts:
                entries.append((_line(ax, xs[rows], fs[rows], color=colour, presorted=True),
                                literal(level)))
        else:
            # Too many groups to list: one collection of lines, no legend entries.
            segments, segment_colours = [], []
            for rows, _, colour in parts:
                vertices = _vertices(xs[rows], fs[rows], presorted=True)
                if len(vertices):
                    segments.append(vertices)
                    segment_colours.append(colour)
            ax.add_collection(LineCollection(segments, colors=segment_colours,
                                             linewidths=1.6))
            ax.autoscale_view()
    listed = groups is not None and bool(entries)
    if pop is not None:
        entries.append((_line(ax, xs, pop, color="black", dashed=True),
                        "population (fixed effects)"))
    if entries:
        ax.legend([e[0] for e in entries], [e[1] for e in entries],
                  title=literal(group_name) if listed else None, fontsize=8,
                  title_fontsize=8, frameon=False, loc="center left",
                  bbox_to_anchor=(1.0, 0.5))
    style_axes(ax, x_label, y_label)
    what = "Data and fitted line" if groups is None else f"Data and fitted lines by {group_name}"
    set_title(fig, what, model, note)
    return to_bytes(fig, fmt)


def _vertices(x: npt.NDArray[np.float64], f: npt.NDArray[np.float64], *,
              presorted: bool = False) -> npt.NDArray[np.float64]:
    """The line's (x, f) points in x order, finite only, thinned to at most
    ``_MAX_LINE_VERTICES`` evenly spaced ones (the first and last kept)."""
    keep = np.isfinite(x) & np.isfinite(f)
    x, f = x[keep], f[keep]
    if not presorted:
        order = np.argsort(x, kind="stable")
        x, f = x[order], f[order]
    if x.size > _MAX_LINE_VERTICES:
        pick = np.unique(np.linspace(0, x.size - 1, _MAX_LINE_VERTICES).round()
                         .astype(np.intp))
        x, f = x[pick], f[pick]
    return np.column_stack([x, f])


def _line(ax: Axes, x: npt.NDArray[np.float64], f: npt.NDArray[np.float64], *,
          color: object, dashed: bool = False, presorted: bool = False) -> Line2D:
    vertices = _vertices(x, f, presorted=presorted)
    (line,) = ax.plot(vertices[:, 0], vertices[:, 1], color=color,
                      linewidth=2.0 if dashed else 1.6, linestyle="--" if dashed else "-")
    return line
