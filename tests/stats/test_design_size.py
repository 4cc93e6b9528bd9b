"""The design size computed from a formula and a column profile equals the design built."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from service.datasets.ingest import normalize, read_csv
from service.stats.design import build_design
from service.stats.design.size import design_size
from service.stats.formula import parse_formula

DATA = Path(__file__).resolve().parent.parent / "data"

CASES = [
    ("mood", "Mood ~ Exercise"),
    ("mood", "Mood ~ Exercise * State"),
    ("mood", "Mood ~ 0 + State + Exercise:State"),
    ("mood", "Mood ~ poly(Exercise, 3) + (1 + Exercise | State)"),
    ("cake", "angle ~ recipe * factor(temp) + (1 | recipe:replicate)"),
    ("oats", "yield ~ nitro * Variety + (1 | Block/Variety)"),
    ("orthodont", "distance ~ age * Sex + (age || Subject)"),
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("pastes", "strength ~ 1 + (1 | batch) + (1 | cask:batch)"),
]


@pytest.mark.parametrize(("name", "text"), CASES)
def test_the_size_is_that_of_the_design_built(name: str, text: str) -> None:
    table = normalize(read_csv((DATA / f"{name}.csv").read_bytes()))
    frame: pd.DataFrame = table.frame
    kinds = {c.name: c.dtype for c in table.columns}
    levels = {c.name: c.n_levels or 0 for c in table.columns}
    formula = parse_formula(text)
    size = design_size(formula, kinds, levels, len(frame))
    design = build_design(formula, frame)
    assert size.fixed_columns == design.X.shape[1] + len(design.dropped_aliased)
    assert size.random_columns == sum(b.q * b.n_levels for b in design.random)
    assert size.x_bytes == len(frame) * size.fixed_columns * 8


def test_two_crossed_20000_level_factors_have_400_million_columns() -> None:
    formula = parse_formula("y ~ a * b")
    size = design_size(formula, {"y": "numeric", "a": "categorical", "b": "categorical"},
                       {"y": 40_000, "a": 20_000, "b": 20_000}, 40_000)
    assert size.fixed_columns == 1 + 2 * 19_999 + 19_999**2
    assert size.largest_fixed.label == "a:b"
    assert size.memory_bytes > 10**14
