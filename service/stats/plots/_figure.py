"""Figures drawn without pyplot, so concurrent requests share no global state.

Each plot makes its own ``matplotlib.figure.Figure`` and renders it with the Agg (PNG) or
SVG backend chosen by ``savefig``'s format; nothing touches ``matplotlib.pyplot`` or the
global rcParams, which are not thread-safe.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from service.stats.errors import StatsError

PlotFormat = Literal["png", "svg"]
FORMATS: tuple[str, ...] = ("png", "svg")
DPI = 110
TITLE_SIZE = 11
LABEL_SIZE = 10
TICK_SIZE = 9
POINT_COLOUR = "#1f4e79"
SMOOTH_COLOUR = "#c0392b"
REFERENCE_COLOUR = "#7f7f7f"

# Above this many observations a scatter draws a seeded random sample of this many points
# (a 100,000-point SVG is megabytes of markers) and smoothers become binned means.
MAX_POINTS = 20_000
SAMPLE_SEED = 20_240_611
# Equal-count bins of the binned-means smoother that replaces lowess on large data.
SMOOTH_BINS = 50

# XML 1.0 has no place for these; in a title they would make the SVG unparseable.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def literal(text: object) -> str:
    """Text from user input (a model's name, a column, a level, a formula) as matplotlib
    draws it literally: never as mathtext.

    matplotlib parses a line with an even number of unescaped ``$`` as mathtext, where
    ``\\``, ``_`` and ``^`` are commands and an unknown macro raises while drawing. Each
    ``$`` is escaped as ``\\$``, so no line has an unescaped one: matplotlib then draws the
    line as plain text, unescaping ``\\$`` back to ``$`` (a ``\\`` outside mathtext is a
    backslash). ``parse_math=False`` would do the same, but only for a ``Text`` it is set
    on, and tick labels and legend entries are ``Text`` objects matplotlib makes itself.
    Control characters (which XML cannot carry) become U+FFFD.

    Every string from user input goes through here exactly once before matplotlib sees it:
    the helpers below (titles, axis labels) call it; plot modules call it for tick labels,
    legend entries and panel titles.
    """
    return _CONTROL.sub("\ufffd", str(text)).replace("$", "\\$")


def check_format(fmt: str) -> PlotFormat:
    """Validate a requested image format."""
    if fmt == "png":
        return "png"
    if fmt == "svg":
        return "svg"
    raise StatsError(f"Unknown plot format {fmt!r}; use one of: {', '.join(FORMATS)}.")


def new_figure(width: float = 6.4, height: float = 4.8) -> Figure:
    """A free-standing figure (no pyplot figure manager)."""
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def style_axes(ax: Axes, xlabel: str, ylabel: str) -> None:
    """Readable labels (user text, drawn literally) and ticks, light grid behind the data."""
    ax.set_xlabel(literal(xlabel), fontsize=LABEL_SIZE)
    ax.set_ylabel(literal(ylabel), fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.grid(True, color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)


def set_title(fig: Figure, what: str, model: str, note: str | None = None) -> None:
    """Title naming the plot and, on its own line, the model it shows; ``note`` (what was
    left out or summarised, e.g. a sample of the points) is a third line, the subtitle.

    All three are drawn literally (they contain column, level and model names).
    """
    lines = [what, model] + ([note] if note else [])
    fig.suptitle("\n".join(literal(line) for line in lines), fontsize=TITLE_SIZE)


def sample_rows(n: int, limit: int = MAX_POINTS) -> npt.NDArray[np.intp] | None:
    """Indices (sorted) of a seeded random sample of ``limit`` of ``n`` rows, or None when
    all ``n`` are to be drawn. The same data always gives the same sample."""
    if n <= limit:
        return None
    rng = np.random.default_rng(SAMPLE_SEED)
    return np.sort(rng.choice(n, size=limit, replace=False))


def points_note(shown: int, total: int, how: str) -> str:
    """The subtitle of a plot that draws some of its points: "20,000 of 100,000 points
    shown (a random sample)"."""
    return f"{shown:,} of {total:,} points shown ({how})"


def binned_means(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], bins: int = SMOOTH_BINS
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Mean x and mean y of ``bins`` equal-count bins of the points ordered by x: a smoother
    that costs one sort (lowess costs n × span)."""
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    starts = np.linspace(0, xs.size, min(bins, xs.size) + 1).astype(np.intp)[:-1]
    counts = np.diff(np.append(starts, xs.size))
    return np.add.reduceat(xs, starts) / counts, np.add.reduceat(ys, starts) / counts


def to_bytes(fig: Figure, fmt: str) -> bytes:
    """Render the figure as PNG or SVG bytes."""
    checked = check_format(fmt)
    buffer = io.BytesIO()
    # Dates and software versions in the metadata would make identical plots differ.
    metadata: dict[str, str | None] = (
        {"Date": None} if checked == "svg" else {"Software": None}
    )
    fig.savefig(buffer, format=checked, metadata=metadata)
    return buffer.getvalue()


def group_colours(n: int) -> Sequence[tuple[float, float, float, float]]:
    """Distinct colours for ``n`` groups (qualitative maps first, then a sequential one)."""
    from matplotlib import colormaps

    if n <= 10:
        cmap = colormaps["tab10"]
        return [cmap(i) for i in range(n)]
    if n <= 20:
        cmap = colormaps["tab20"]
        return [cmap(i) for i in range(n)]
    cmap = colormaps["viridis"]
    return [cmap(i / max(n - 1, 1)) for i in range(n)]
