"""The pieces that refits share with the fit: cross-products rebuilt for a new response
or recombined columns, and the single-term and dense objectives, each against the
engine's own (``structure.cross_products``, ``objective.Objective``) computed from
scratch."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from service.stats.design import Design, build_design
from service.stats.formula import parse_formula
from service.stats.lmm.dense_objective import MAX_COLUMNS, DenseObjective, fits_densely
from service.stats.lmm.objective import Method, Objective
from service.stats.lmm.responses import NewResponses, combine_columns
from service.stats.lmm.single_term import SingleTermObjective
from service.stats.lmm.structure import CrossProducts, cross_products
from tests.stats.test_ols import DATA

MODELS = [("sleepstudy.csv", "Reaction ~ Days + (Days | Subject)"),
          ("dyestuff.csv", "Yield ~ 1 + (1 | Batch)"),
          ("penicillin.csv", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
          ("mood.csv", "Mood ~ Exercise + (1 + Exercise | State)"),
          ("pastes.csv", "strength ~ 1 + (1 | batch/cask)")]
ONE_TERM = [MODELS[0], MODELS[1], MODELS[3]]


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


def _same_objective(fast: Objective, cp: CrossProducts, method: Method) -> None:
    engine = Objective(cp, method)
    rng = np.random.default_rng(3)
    for _ in range(5):
        theta = rng.standard_normal(cp.n_theta) * rng.uniform(0.0, 3.0)
        theta[cp.lower_bounds() == 0] = np.abs(theta[cp.lower_bounds() == 0])
        assert fast(theta) == pytest.approx(engine(theta), rel=1e-11)
    zero = np.zeros(cp.n_theta)  # the boundary: no random effects at all
    assert fast(zero) == pytest.approx(engine(zero), rel=1e-11)
    assert fast.evaluations == 6


@pytest.mark.parametrize(("dataset", "formula"), ONE_TERM)
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_the_single_term_objective_is_the_engines(dataset: str, formula: str,
                                                  method: Method) -> None:
    cp = cross_products(_design(dataset, formula))
    _same_objective(SingleTermObjective(cp, method), cp, method)


@pytest.mark.parametrize(("dataset", "formula"), MODELS)
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_the_dense_objective_is_the_engines(dataset: str, formula: str,
                                            method: Method) -> None:
    cp = cross_products(_design(dataset, formula))
    _same_objective(DenseObjective(cp, method), cp, method)


def test_the_dense_objective_refuses_many_random_effects() -> None:
    levels = MAX_COLUMNS + 1
    frame = pd.DataFrame({"g": [f"g{i}" for i in range(levels)] * 2,
                          "y": np.arange(2.0 * levels)})
    cp = cross_products(build_design(parse_formula("y ~ 1 + (1 | g)"), frame))
    assert not fits_densely(cp)
    with pytest.raises(ValueError, match="at most"):
        DenseObjective(cp, "REML")


def test_the_single_term_objective_refuses_crossed_terms() -> None:
    cp = cross_products(_design(*MODELS[2]))
    with pytest.raises(ValueError, match="one random-effects term"):
        SingleTermObjective(cp, "REML")
