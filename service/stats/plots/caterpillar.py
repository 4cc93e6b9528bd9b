"""Caterpillar plot of conditional modes with ±1.96 conditional-SD intervals (lattice's
``dotplot(ranef(m, condVar = TRUE))``): one panel per grouping factor and term, levels
ordered by their mode."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from service.stats.errors import StatsError
from service.stats.plots._figure import (
    POINT_COLOUR,
    REFERENCE_COLOUR,
    TICK_SIZE,
    check_format,
    literal,
    new_figure,
    set_title,
    style_axes,
    to_bytes,
)
from service.stats.results import ConditionalModes

Z_95 = 1.959963984540054
# Level labels become unreadable past this many rows per panel; they are then omitted
# (the ordering and the intervals still show the spread).
_MAX_LABELLED_LEVELS = 60


def caterpillar(
    modes: Sequence[ConditionalModes],
    *,
    model: str,
    fmt: str = "png",
) -> bytes:
    """Conditional modes per level with intervals ``mode ± 1.96 · cond. SD``.

    Parameters
    ----------
    modes : sequence of ConditionalModes
        The fit's conditional modes, one entry per random-effects term.
    model : str
        What model this is, shown in the title.
    fmt : {"png", "svg"}
        Image format.

    Returns
    -------
    bytes
        The encoded image.
    """
    check_format(fmt)
    panels = [(m, j) for m in modes for j in range(len(m.terms))]
    if not panels:
        raise StatsError("This model has no conditional modes to plot.")
    max_levels = max(len(m.levels) for m, _ in panels)
    ncols = min(len(panels), 3)
    nrows = -(-len(panels) // ncols)
    height = min(14.0, max(3.2, 0.22 * max_levels + 1.6)) * nrows
    fig = new_figure(width=3.6 * ncols + 0.8, height=min(height, 24.0))
    for index, (block, j) in enumerate(panels, start=1):
        ax = fig.add_subplot(nrows, ncols, index)
        values = np.array([row[j] for row in block.modes], dtype=np.float64)
        sds = np.array([row[j] for row in block.cond_sd], dtype=np.float64)
        order = np.argsort(values, kind="stable")
        positions = np.arange(len(order))
        ax.axvline(0.0, color=REFERENCE_COLOUR, linestyle="--", linewidth=1)
        ax.errorbar(values[order], positions, xerr=Z_95 * sds[order], fmt="o",
                    color=POINT_COLOUR, ecolor="#6b8fb3", markersize=4, capsize=2,
                    linewidth=1)
        if len(order) <= _MAX_LABELLED_LEVELS:
            ax.set_yticks(positions, [literal(block.levels[i]) for i in order],
                          fontsize=TICK_SIZE)
        else:
            ax.set_yticks([])
        ax.set_title(literal(f"{block.group}: {block.terms[j]}"), fontsize=10)
        style_axes(ax, "Conditional mode", block.group if index == 1 else "")
    set_title(fig, "Conditional modes with 95% intervals", model)
    return to_bytes(fig, fmt)
