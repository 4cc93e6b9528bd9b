"""Diagnostic and data plots of fitted models, as PNG or SVG bytes.

Every function takes plain arrays (never database rows) and draws on its own
``matplotlib.figure.Figure``, so plots can be rendered from several threads at once.
Text from user input (model names, formulas, columns, levels) is drawn literally, never as
mathtext (``_figure.literal``). Above ``MAX_POINTS`` observations a plot draws a seeded
sample of the points (evenly spaced quantiles for Q-Q), smooths with binned means instead
of lowess, and says so in its subtitle; residuals by a factor with more than ``MAX_BOXES``
levels show the levels with most rows.
"""

from service.stats.plots._figure import FORMATS, PlotFormat
from service.stats.plots.catalog import (
    CATERPILLAR,
    FITTED_LINES,
    PLOT_NAMES,
    QQ,
    RESIDUALS_BY_GROUP,
    RESIDUALS_VS_FITTED,
    PlotData,
    available_plots,
    render_plot,
)
from service.stats.plots.caterpillar import caterpillar
from service.stats.plots.fitted import data_with_fit
from service.stats.plots.residuals import normal_qq, residuals_by_group, residuals_vs_fitted

__all__ = [
    "CATERPILLAR",
    "FITTED_LINES",
    "FORMATS",
    "PLOT_NAMES",
    "QQ",
    "RESIDUALS_BY_GROUP",
    "RESIDUALS_VS_FITTED",
    "PlotData",
    "PlotFormat",
    "available_plots",
    "caterpillar",
    "data_with_fit",
    "normal_qq",
    "render_plot",
    "residuals_by_group",
    "residuals_vs_fitted",
]
