"""Figures drawn without pyplot, so concurrent requests share no global state.

Each plot makes its own ``matplotlib.figure.Figure`` and renders it with the Agg (PNG) or
SVG backend chosen by ``savefig``'s format; nothing touches ``matplotlib.pyplot`` or the
global rcParams, which are not thread-safe.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

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
    """Readable labels and ticks, light grid behind the data."""
    ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    ax.set_ylabel(ylabel, fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.grid(True, color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)


def set_title(fig: Figure, what: str, model: str) -> None:
    """Title naming the plot and, on its own line, the model it shows."""
    fig.suptitle(f"{what}\n{model}", fontsize=TITLE_SIZE)


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
