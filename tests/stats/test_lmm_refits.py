"""The pieces that refits share with the fit: cross-products rebuilt for a new response
or recombined columns, and the single-term objective, each against the engine's own
(``structure.cross_products``, ``objective.Objective``) computed from scratch."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from service.stats.design import Design, build_design
from service.stats.formula import parse_formula
from service.stats.lmm.objective import Objective
from service.stats.lmm.responses import NewResponses, combine_columns
from service.stats.lmm.single_term import SingleTermObjective
from service.stats.lmm.structure import CrossProducts, cross_products
from tests.stats.test_ols import DATA

MODELS = [("sleepstudy.csv", "Reaction ~ Days + (Days | Subject)"),
          ("dyestuff.csv", "Yield ~ 1 + (1 | Batch)"),
          ("penicillin.csv", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
          ("mood.csv", "Mood ~ Exercise + (1 + Exercise | State)")]


def _design(dataset: str, formula: str) -> Design:
    return build_design(parse_formula(formula), pd.read_csv(DATA / dataset))


def _same(a: CrossProducts, b: CrossProducts) -> None:
    assert a.n_fixed == b.n_fixed
    for name in ("zxy_first", "zxy_rest", "xy_xy"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12,
                                   atol=1e-9)


@pytest.mark.parametrize(("dataset", "formula"), MODELS)
def test_a_new_response_gives_the_cross_products_of_its_design(dataset: str,
                                                                formula: str) -> None:
    design = _design(dataset, formula)
    cp = cross_products(design)
    assert design.y is not None
    y = np.random.default_rng(1).standard_normal(len(design.y)) * 3.0 + 10.0
    _same(NewResponses(cp, design).cross_products(y), cross_products(replace(design, y=y)))


@pytest.mark.parametrize(("dataset", "formula"), MODELS)
def test_combined_columns_give_the_cross_products_of_the_combined_design(
        dataset: str, formula: str) -> None:
    design = _design(dataset, formula)
    assert design.y is not None
    p = design.X.shape[1]
    a = np.random.default_rng(2).standard_normal((p + 1, p))
    xy = np.column_stack([design.X, design.y]) @ a
    combined = replace(design, X=np.ascontiguousarray(xy[:, :-1]), y=xy[:, -1])
    _same(combine_columns(cross_products(design), a), cross_products(combined))


@pytest.mark.parametrize(("dataset", "formula"), [m for m in MODELS if "plate" not in m[1]])
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_the_single_term_objective_is_the_engines(dataset: str, formula: str,
                                                  method: str) -> None:
    cp = cross_products(_design(dataset, formula))
    fast = SingleTermObjective(cp, "REML" if method == "REML" else "ML")
    engine = Objective(cp, "REML" if method == "REML" else "ML")
    rng = np.random.default_rng(3)
    for _ in range(5):
        theta = np.abs(rng.standard_normal(cp.n_theta)) * rng.uniform(0.0, 3.0)
        assert fast(theta) == pytest.approx(engine(theta), rel=1e-11)
    zero = np.zeros(cp.n_theta)  # the boundary: no random effects at all
    assert fast(zero) == pytest.approx(engine(zero), rel=1e-11)
    assert fast.evaluations == 6


def test_the_single_term_objective_refuses_crossed_terms() -> None:
    cp = cross_products(_design(*MODELS[2]))
    with pytest.raises(ValueError, match="one random-effects term"):
        SingleTermObjective(cp, "REML")
