"""Which plots a model has, and drawing one by name from plain arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.stats.errors import StatsError
from service.stats.plots.caterpillar import caterpillar
from service.stats.plots.fitted import data_with_fit
from service.stats.plots.residuals import normal_qq, residuals_by_group, residuals_vs_fitted
from service.stats.results import ConditionalModes, ModelKind

RESIDUALS_VS_FITTED = "residuals_vs_fitted"
RESIDUALS_BY_GROUP = "residuals_by_group"
QQ = "qq"
FITTED_LINES = "fitted_lines"
CATERPILLAR = "caterpillar"
PLOT_NAMES = (RESIDUALS_VS_FITTED, RESIDUALS_BY_GROUP, QQ, FITTED_LINES, CATERPILLAR)


def available_plots(kind: ModelKind, has_groups: bool, n_numeric_predictors: int) -> list[str]:
    """The plots that make sense for a model.

    Parameters
    ----------
    kind : {"lm", "lmm", "lm_by_group"}
        The model kind.
    has_groups : bool
        Whether there is a grouping factor to split residuals by (always for ``lmm`` and
        ``lm_by_group``; for ``lm`` when the caller names one).
    n_numeric_predictors : int
        Number of numeric predictor columns in the fixed effects: the fitted-line plot
        needs exactly one to put on the x axis.

    Returns
    -------
    list of str
        Plot names, in the order a reader would look at them.
    """
    grouped = has_groups or kind in ("lmm", "lm_by_group")
    names = [RESIDUALS_VS_FITTED]
    if grouped:
        names.append(RESIDUALS_BY_GROUP)
    names.append(QQ)
    if n_numeric_predictors == 1:
        names.append(FITTED_LINES)
    if kind == "lmm":
        names.append(CATERPILLAR)
    return names


@dataclass(frozen=True, eq=False)
class PlotData:
    """Everything the plots of one model draw from, as plain arrays.

    ``fitted``, ``residuals`` and ``std_residuals`` have one entry per row used in the fit
    (a ``residual_table``'s columns); ``group_values`` that row's level of ``group_name``;
    ``x`` that row's value of the one numeric predictor ``x_name`` and ``y`` the response;
    ``population`` the fixed-effects-only fitted values of a mixed model;
    ``line_group_values`` the row's line in the fitted-line plot (one line per level of
    the grouping factor or categorical predictor, None for a single line).
    """

    kind: ModelKind
    model_label: str
    response_name: str
    fitted: npt.NDArray[np.float64]
    residuals: npt.NDArray[np.float64]
    std_residuals: npt.NDArray[np.float64]
    group_name: str | None = None
    group_values: tuple[object, ...] | None = None
    x_name: str | None = None
    x: npt.NDArray[np.float64] | None = None
    y: npt.NDArray[np.float64] | None = None
    population: npt.NDArray[np.float64] | None = None
    conditional_modes: tuple[ConditionalModes, ...] = ()
    n_numeric_predictors: int = 0
    line_group_name: str | None = None
    line_group_values: tuple[object, ...] | None = None

    @property
    def available(self) -> list[str]:
        return available_plots(self.kind, self.group_values is not None,
                               self.n_numeric_predictors)


def render_plot(name: str, data: PlotData, fmt: str = "png") -> bytes:
    """Draw the plot ``name`` of a model.

    Parameters
    ----------
    name : str
        One of ``data.available``.
    data : PlotData
        The model's arrays.
    fmt : {"png", "svg"}
        Image format.

    Returns
    -------
    bytes
        The encoded image.

    Raises
    ------
    StatsError
        An unknown or unavailable plot name, or a format other than png or svg.
    """
    available = data.available
    if name not in available:
        raise StatsError(
            f"There is no plot {name!r} for this {data.kind} model; available: "
            f"{', '.join(available)}."
        )
    model = data.model_label
    if name == RESIDUALS_VS_FITTED:
        return residuals_vs_fitted(data.fitted, data.residuals, model=model, fmt=fmt)
    if name == RESIDUALS_BY_GROUP:
        groups, group_name = _groups(data)
        return residuals_by_group(data.residuals, groups, group_name=group_name, model=model,
                                  fmt=fmt)
    if name == QQ:
        return normal_qq(data.std_residuals, model=model, fmt=fmt)
    if name == FITTED_LINES:
        if data.x is None or data.y is None or data.x_name is None:
            raise StatsError("The fitted-line plot needs the predictor and response values.")
        return data_with_fit(
            data.x, data.y, data.fitted, x_label=data.x_name, y_label=data.response_name,
            model=model, groups=data.line_group_values, group_name=data.line_group_name,
            population=data.population if data.kind == "lmm" else None, fmt=fmt,
        )
    return caterpillar(data.conditional_modes, model=model, fmt=fmt)


def _groups(data: PlotData) -> tuple[tuple[object, ...], str]:
    if data.group_values is None or data.group_name is None:
        raise StatsError("This plot needs a grouping factor (group_name and group_values).")
    return data.group_values, data.group_name
