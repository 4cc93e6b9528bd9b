"""Every available plot of every model kind renders as a valid PNG and SVG.

Validity is checked by decoding, not by looking: PNG bytes start with the PNG signature and
decode with matplotlib.image.imread to an RGBA image; SVG bytes parse as XML with an <svg>
root. Titles are checked in the SVG, where matplotlib keeps each text as a comment.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from matplotlib import image as mpimg
from matplotlib.text import Text

from service.stats.design.types import Design
from service.stats.diagnostics import residual_table
from service.stats.errors import StatsError
from service.stats.ols import fit_ols, fitted_values
from service.stats.plots import (
    PLOT_NAMES,
    PlotData,
    available_plots,
    caterpillar,
    render_plot,
)
from service.stats.plots._figure import MAX_POINTS, binned_means, sample_rows
from service.stats.plots.residuals import MAX_BOXES, ppoints
from service.stats.results import ConditionalModes
from tests.stats.test_ols import DATA, expected, hand_design

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(data: bytes) -> None:
    assert data.startswith(PNG_SIGNATURE)
    img = mpimg.imread(io.BytesIO(data), format="png")
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100


def assert_svg(data: bytes, must_mention: str) -> None:
    root = ET.fromstring(data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = " ".join(re.findall(r"<!-- (.*?) -->", data.decode(), flags=re.S))
    assert must_mention in texts


def lm_plot_data(group: bool) -> PlotData:
    data = pd.read_csv(DATA / "mood.csv")
    design = hand_design(data, "Mood", ["Exercise"])
    table = residual_table(design, fitted_values(design, fit_ols(design)), data=data,
                           group_columns=["State"])
    return PlotData(
        kind="lm", model_label="Mood ~ Exercise (OLS)", response_name="Mood",
        fitted=table["fitted"].to_numpy(), residuals=table["residual"].to_numpy(),
        std_residuals=table["std_residual"].to_numpy(),
        group_name="State" if group else None,
        group_values=tuple(table["State"]) if group else None,
        x_name="Exercise", x=data["Exercise"].to_numpy(), y=data["Mood"].to_numpy(),
        n_numeric_predictors=1,
    )


def modes_from_reference(case: str, group: str) -> ConditionalModes:
    ref = expected(case)
    levels = tuple(ref["ranef"][group])
    terms = tuple(ref["ranef"][group][levels[0]])
    return ConditionalModes(
        group=group, terms=terms, levels=levels,
        modes=tuple(tuple(ref["ranef"][group][lv][t] for t in terms) for lv in levels),
        cond_sd=tuple(tuple(ref["ranef_condsd"][group][lv][t] for t in terms) for lv in levels),
    )


def lmm_plot_data(case: str, file: str, response: str, x: str, group: str) -> PlotData:
    data = pd.read_csv(DATA / file)
    ref = expected(case)
    fitted = np.asarray(ref["fitted"])
    resid = data[response].to_numpy() - fitted
    population = ref["fixef"]["(Intercept)"] + ref["fixef"][x] * data[x].to_numpy()
    return PlotData(
        kind="lmm", model_label=f"{ref['formula']} ({ref['method']})", response_name=response,
        fitted=fitted, residuals=resid, std_residuals=resid / ref["sigma"],
        group_name=group, group_values=tuple(data[group].astype(str)),
        line_group_name=group, line_group_values=tuple(data[group].astype(str)),
        x_name=x, x=data[x].to_numpy(dtype=float), y=data[response].to_numpy(),
        population=population, conditional_modes=(modes_from_reference(case, group),),
        n_numeric_predictors=1,
    )


def by_group_plot_data() -> PlotData:
    data = pd.read_csv(DATA / "mood.csv")
    fitted = np.empty(len(data))
    std = np.empty(len(data))
    for state, rows in data.groupby("State").groups.items():
        part = data.loc[rows]
        design: Design = hand_design(part, "Mood", ["Exercise"])
        table = residual_table(design, fitted_values(design, fit_ols(design)))
        fitted[np.asarray(rows)] = table["fitted"].to_numpy()
        std[np.asarray(rows)] = table["std_residual"].to_numpy()
        assert str(state) in "ABCD"
    return PlotData(
        kind="lm_by_group", model_label="Mood ~ Exercise | State (OLS by group)",
        response_name="Mood", fitted=fitted, residuals=data["Mood"].to_numpy() - fitted,
        std_residuals=std, group_name="State", group_values=tuple(data["State"]),
        line_group_name="State", line_group_values=tuple(data["State"]),
        x_name="Exercise", x=data["Exercise"].to_numpy(), y=data["Mood"].to_numpy(),
        n_numeric_predictors=1,
    )


MODELS = {
    "lm": lambda: lm_plot_data(group=False),
    "lm_grouped": lambda: lm_plot_data(group=True),
    "lmm_mood": lambda: lmm_plot_data("mood_lmer_ml", "mood.csv", "Mood", "Exercise", "State"),
    "lmm_sleepstudy": lambda: lmm_plot_data("sleepstudy_reml", "sleepstudy.csv", "Reaction",
                                            "Days", "Subject"),
    "lm_by_group": by_group_plot_data,
}
EXPECTED_NAMES = {
    "lm": ["residuals_vs_fitted", "qq", "fitted_lines"],
    "lm_grouped": ["residuals_vs_fitted", "residuals_by_group", "qq", "fitted_lines"],
    "lmm_mood": list(PLOT_NAMES),
    "lmm_sleepstudy": list(PLOT_NAMES),
    "lm_by_group": ["residuals_vs_fitted", "residuals_by_group", "qq", "fitted_lines"],
}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_available_plot_renders_png_and_svg(model: str) -> None:
    data = MODELS[model]()
    assert data.available == EXPECTED_NAMES[model]
    if model == "lm":
        return  # its plots are lm_grouped's minus one; spare the shared CPUs
    formula = data.model_label.split(" (")[0]
    for name in data.available:
        assert_png(render_plot(name, data, "png"))
        assert_svg(render_plot(name, data, "svg"), formula)


def test_available_plots_by_kind() -> None:
    assert available_plots("lm", False, 2) == ["residuals_vs_fitted", "qq"]
    assert available_plots("lm", False, 0) == ["residuals_vs_fitted", "qq"]
    assert available_plots("lmm", False, 0) == ["residuals_vs_fitted", "residuals_by_group",
                                                "qq", "caterpillar"]
    assert "caterpillar" not in available_plots("lm_by_group", True, 1)


def test_unavailable_plot_and_unknown_format_are_stats_errors() -> None:
    data = lm_plot_data(group=False)
    with pytest.raises(StatsError, match="no plot 'caterpillar'.*available: residuals_vs"):
        render_plot("caterpillar", data, "png")
    with pytest.raises(StatsError, match="format 'jpg'"):
        render_plot("qq", data, "jpg")


def test_caterpillar_with_many_levels_drops_labels_but_renders() -> None:
    rng = np.random.default_rng(1)
    levels = tuple(f"L{i:03d}" for i in range(80))
    modes = ConditionalModes(
        group="g", terms=("(Intercept)",), levels=levels,
        modes=tuple((float(v),) for v in rng.normal(size=80)),
        cond_sd=tuple((0.3,) for _ in levels),
    )
    assert_png(caterpillar([modes], model="y ~ 1 + (1 | g)", fmt="png"))
    with pytest.raises(StatsError, match="no conditional modes"):
        caterpillar([], model="y ~ x", fmt="png")


def test_rendering_in_threads_gives_the_same_images() -> None:
    # No pyplot and no global rcParams: concurrent renders must not disturb each other.
    data = lmm_plot_data("mood_lmer_ml", "mood.csv", "Mood", "Exercise", "State")
    jobs = [("qq", "png"), ("caterpillar", "svg"), ("fitted_lines", "png"),
            ("residuals_by_group", "svg")]
    sequential = [render_plot(n, data, f) for n, f in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda job: render_plot(job[0], data, job[1]), jobs))
    assert [without_svg_ids(b) for b in concurrent] == [without_svg_ids(b) for b in sequential]


def without_svg_ids(data: bytes) -> bytes:
    # matplotlib salts SVG element ids with a random value per render (svg.hashsalt).
    return re.sub(rb"[0-9a-f]{10}(?=[\")])", b"ID", data)


def test_ppoints_matches_r() -> None:
    # R: ppoints(5) and ppoints(20); exact rational values.
    np.testing.assert_allclose(ppoints(5), (np.arange(1, 6) - 3 / 8) / 5.25, rtol=1e-15)
    np.testing.assert_allclose(ppoints(20), (np.arange(1, 21) - 0.5) / 20, rtol=1e-15)


# User text that mathtext would parse (an undefined macro raises while drawing), in every
# role a plot draws: the model's label (title), the response and predictor (axis labels),
# the grouping factor (axis label, legend title, panel titles), its levels (tick labels,
# legend entries; "_" would also hide a legend entry) and a random-effects term.
HOSTILE_MODEL = r"$\undefinedmacro$ <a & b> -- 50% of $x_1^2$"
HOSTILE_Y = r"$y_1^2$"
HOSTILE_X = r"\x$_{x}$"
HOSTILE_GROUP = r"$\group$"
HOSTILE_LEVELS = (r"$\alpha$", "_hidden", "a^b_c", r"c\$d")
HOSTILE_TERM = r"$\slope$"
HOSTILE = (HOSTILE_MODEL, HOSTILE_Y, HOSTILE_X, HOSTILE_GROUP, *HOSTILE_LEVELS,
           f"{HOSTILE_GROUP}: {HOSTILE_TERM}")


def hostile_plot_data() -> PlotData:
    base = lmm_plot_data("mood_lmer_ml", "mood.csv", "Mood", "Exercise", "State")
    rename = dict(zip("ABCD", HOSTILE_LEVELS, strict=True))
    assert base.group_values is not None and base.line_group_values is not None
    modes = base.conditional_modes[0]
    return PlotData(
        kind="lmm", model_label=HOSTILE_MODEL, response_name=HOSTILE_Y,
        fitted=base.fitted, residuals=base.residuals, std_residuals=base.std_residuals,
        group_name=HOSTILE_GROUP,
        group_values=tuple(rename[str(g)] for g in base.group_values),
        line_group_name=HOSTILE_GROUP,
        line_group_values=tuple(rename[str(g)] for g in base.line_group_values),
        x_name=HOSTILE_X, x=base.x, y=base.y, population=base.population,
        conditional_modes=(ConditionalModes(
            group=HOSTILE_GROUP, terms=("(Intercept)", HOSTILE_TERM),
            levels=tuple(rename[str(lv)] for lv in modes.levels),
            modes=modes.modes, cond_sd=modes.cond_sd),),
        n_numeric_predictors=1,
    )


@pytest.fixture
def drawn_text(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Every line of text matplotlib draws or measures, as drawn, and whether as mathtext
    (a spy on the one method that decides)."""
    seen: list[tuple[str, bool]] = []
    original = Text._preprocess_math  # type: ignore[attr-defined]

    def spy(self: Text, s: str) -> tuple[str, object]:
        clean, ismath = original(self, s)
        seen.append((clean, ismath is not False))
        return clean, ismath

    monkeypatch.setattr(Text, "_preprocess_math", spy)
    return seen


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_user_text_is_drawn_literally_in_every_plot(
        fmt: str, drawn_text: list[tuple[str, bool]]) -> None:
    data = hostile_plot_data()
    assert data.available == list(PLOT_NAMES)
    lines: dict[str, set[str]] = {}
    for name in data.available:
        drawn_text.clear()
        image = render_plot(name, data, fmt)
        if fmt == "png":
            assert_png(image)
        else:
            assert_svg(image, HOSTILE_MODEL.replace("&", "&amp;").replace("<", "&lt;")
                       .replace(">", "&gt;").replace("--", "- -"))
        assert not [text for text, math in drawn_text if math], name
        lines[name] = {text for text, _ in drawn_text}
    everything = set().union(*lines.values())
    for text in HOSTILE:
        assert text in everything, text
    for name in data.available:  # every title names the model, literally
        assert HOSTILE_MODEL in lines[name], name
    assert {HOSTILE_X, HOSTILE_Y} <= lines["fitted_lines"]
    assert set(HOSTILE_LEVELS) | {HOSTILE_GROUP} <= lines["fitted_lines"]  # legend
    assert set(HOSTILE_LEVELS) | {HOSTILE_GROUP} <= lines["residuals_by_group"]  # ticks
    assert set(HOSTILE_LEVELS) <= lines["caterpillar"]
    assert f"Residuals by {HOSTILE_GROUP}" in lines["residuals_by_group"]


def test_control_characters_in_user_text_keep_the_svg_parseable() -> None:
    data = lm_plot_data(group=False)
    named = PlotData(**{**data.__dict__, "model_label": "a\x00b\x1bc $\\x$"})
    root = ET.fromstring(render_plot("residuals_vs_fitted", named, "svg"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def large_plot_data(n: int, levels: int) -> PlotData:
    """An lmm-shaped model of ``n`` rows; level ``Gk`` has about k + 1 shares of the rows,
    so the levels with most rows are the last ones."""
    rng = np.random.default_rng(7)
    weights = np.arange(1, levels + 1, dtype=np.float64)
    g = rng.choice(levels, size=n, p=weights / weights.sum())
    x = rng.normal(size=n)
    fitted = 1.0 + 2.0 * x + 0.05 * g
    resid = rng.normal(size=n)
    names = tuple(f"G{k:02d}" for k in g)
    return PlotData(
        kind="lm_by_group", model_label="y ~ x | g (OLS by group)", response_name="y",
        fitted=fitted, residuals=resid, std_residuals=resid, group_name="g",
        group_values=names, line_group_name="g", line_group_values=names, x_name="x", x=x,
        y=fitted + resid, n_numeric_predictors=1,
    )


def markers(svg: bytes) -> int:
    """Scatter points drawn, when the SVG draws a collection's points as uses of one
    marker path (as it does for many points)."""
    return len(re.findall(rb'<use xlink:href="#C', svg))


def svg_texts(data: bytes) -> str:
    return " ".join(re.findall(r"<!-- (.*?) -->", data.decode(), flags=re.S))


def test_plots_of_large_data_draw_a_sample_and_say_so() -> None:
    n = MAX_POINTS + 10_000
    data = large_plot_data(n, levels=4)
    shown = f"{MAX_POINTS:,} of {n:,} points shown"
    expected_notes = {
        "residuals_vs_fitted": f"{shown} (a random sample); red line: means of 50 "
                               "equal-count bins of all points",
        "residuals_by_group": f"{shown} (a random sample; the boxes use all)",
        "qq": f"{shown} (evenly spaced quantiles, both extremes included)",
        "fitted_lines": f"{shown} (a random sample; the lines go through all)",
    }
    assert data.available == list(expected_notes)
    for name, note in expected_notes.items():
        svg = render_plot(name, data, "svg")
        assert note in svg_texts(svg), name
        # the points drawn are the sample, not all of them
        assert markers(svg) == MAX_POINTS, name
        assert_png(render_plot(name, data, "png"))
    assert "lowess" not in svg_texts(render_plot("residuals_vs_fitted", data, "svg"))
    # the sample is seeded: the same data gives the same image
    first, again = (render_plot("residuals_vs_fitted", data, "png") for _ in range(2))
    assert first == again


def test_small_data_draws_every_point_with_lowess_and_no_note() -> None:
    data = lm_plot_data(group=True)
    svg = render_plot("residuals_vs_fitted", data, "svg")
    texts = svg_texts(svg)
    assert "lowess smooth" in texts and "points shown" not in texts


def test_residuals_by_group_with_many_levels_shows_the_levels_with_most_rows() -> None:
    levels = MAX_BOXES + 10
    data = large_plot_data(4_000, levels=levels)
    assert data.group_values is not None
    counts = pd.Series(data.group_values).value_counts()
    top = sorted(counts.sort_values(ascending=False, kind="stable").index[:MAX_BOXES])
    rest = sorted(set(counts.index) - set(top))
    svg = render_plot("residuals_by_group", data, "svg")
    texts = svg_texts(svg)
    assert (f"the {MAX_BOXES} of {levels} levels with most rows shown "
            f"({int(counts[top].sum()):,} of 4,000 rows)") in texts
    ticks = re.findall(r"<!-- (G\d\d) -->", svg.decode())
    assert ticks == top  # in natural order, one box each
    assert not set(rest) & set(ticks)
    assert_png(render_plot("residuals_by_group", data, "png"))


def test_fitted_lines_with_many_groups_render_without_a_legend_per_group() -> None:
    data = large_plot_data(3_000, levels=40)
    texts = svg_texts(render_plot("fitted_lines", data, "svg"))
    assert "G39" not in texts and "Data and fitted lines by g" in texts


def test_sample_rows_and_binned_means() -> None:
    assert sample_rows(10, limit=10) is None
    picked = sample_rows(1_000, limit=100)
    assert picked is not None and picked.size == 100
    assert np.all(np.diff(picked) > 0) and picked[-1] < 1_000
    again = sample_rows(1_000, limit=100)
    assert again is not None and np.array_equal(picked, again)
    x = np.arange(100, dtype=np.float64)[::-1].copy()
    bx, by = binned_means(x, 2 * x, bins=4)
    np.testing.assert_allclose(bx, [12.0, 37.0, 62.0, 87.0])
    np.testing.assert_allclose(by, 2 * bx)
