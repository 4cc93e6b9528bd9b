"""Parametric bootstrap intervals against lme4 (tests/data/r/intervals.R ->
tests/data/expected/intervals.json): ``confint(fit, method = "boot", boot.type = "perc",
nsim = 1000)`` of sleepstudy's REML fit.

The two bootstraps draw different random numbers (numpy's PCG64 here, R's Mersenne
Twister there), so their percentiles differ by Monte Carlo error. Each percentile's Monte
Carlo standard error is estimated from its own bootstrap distribution
(``percentile_standard_error``: m = sqrt(R p (1 − p)) order statistics times their slope
around rank (R + 1) p; the R script computes the same for lme4's run), and every bound
must be within 3 standard errors of the difference, sqrt(se_here² + se_lme4²), of lme4's.
With nsim = 1000 these SEs are 0.1–0.7% of the bounds (0.02–0.08 for the correlation).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from service.stats.bootstrap import (
    BootstrapError,
    BootstrapSample,
    Refitter,
    Simulator,
    bootstrap_intervals,
    parametric_bootstrap,
    percentile_bounds,
    percentile_standard_error,
    refit_objective,
)
from service.stats.design import Design, build_design
from service.stats.formula import parse_formula
from service.stats.lmm import fit_lmm
from service.stats.lmm.dense_objective import DenseObjective
from service.stats.lmm.objective import Objective
from service.stats.lmm.single_term import SingleTermObjective
from service.stats.lmm.standardized_fit import standardized_fit
from service.stats.results import FitResult
from tests.stats.test_ols import DATA

REFERENCE: dict[str, Any] = json.loads((DATA / "expected" / "intervals.json").read_text())
BOOT: dict[str, Any] = REFERENCE["boot"]["sleepstudy_reml"]


def _fitted(case: dict[str, Any]) -> tuple[Design, FitResult]:
    design = build_design(parse_formula(case["formula"]), pd.read_csv(DATA / case["dataset"]))
    return design, fit_lmm(design, case["method"])


@pytest.fixture(scope="module")
def sleepstudy() -> tuple[Design, FitResult]:
    return _fitted(BOOT)


@pytest.fixture(scope="module")
def sample(sleepstudy: tuple[Design, FitResult]) -> BootstrapSample:
    design, result = sleepstudy
    return parametric_bootstrap(design, result, BOOT["nsim"], BOOT["seed"])


def test_bootstrap_intervals_are_lme4s_within_monte_carlo_error(
        sample: BootstrapSample) -> None:
    level = BOOT["level"]
    table = bootstrap_intervals(sample, level)
    assert (table.method, table.level, sample.failed) == ("boot", level, 0)
    assert [row.parm for row in table.rows] == [row["parm"] for row in BOOT["rows"]]
    tail = (1.0 - level) / 2.0
    for j, (row, ref) in enumerate(zip(table.rows, BOOT["rows"], strict=True)):
        values = sample.replicates[:, j]
        for got, want, want_se, p in ((row.lower, ref["lower"], ref["lower_mc_se"], tail),
                                      (row.upper, ref["upper"], ref["upper_mc_se"],
                                       1.0 - tail)):
            se = float(np.hypot(percentile_standard_error(values, p), want_se))
            assert abs(got - want) <= 3.0 * se, (row.parm, p, got, want, se)


def test_the_estimates_are_the_fits(sample: BootstrapSample,
                                    sleepstudy: tuple[Design, FitResult]) -> None:
    _, result = sleepstudy
    term = result.random_effects[0]
    expected = [term.std_dev[0], term.correlation[1][0], term.std_dev[1],
                result.residual_std_dev, *(fe.estimate for fe in result.fixed_effects)]
    assert sample.estimates == pytest.approx(expected, rel=1e-9)


def _synthetic(formula: str, levels: int) -> tuple[Design, FitResult]:
    """A model whose random effects have more columns than the dense objective takes."""
    rng = np.random.default_rng(11)
    n = levels * 8
    frame = pd.DataFrame({"g": rng.integers(0, levels, n).astype(str),
                          "h": rng.integers(0, 60, n).astype(str),
                          "x": rng.standard_normal(n)})
    frame["y"] = (2.0 + frame.x + rng.standard_normal(levels)[frame.g.astype(int)]
                  + 0.5 * rng.standard_normal(60)[frame.h.astype(int)]
                  + rng.standard_normal(n))
    design = build_design(parse_formula(formula), frame)
    return design, fit_lmm(design, "REML")


def _sdcor_and_beta(result: FitResult) -> list[float]:
    """The statistic's layout (``variance_parameter_names``) from a full fit's result."""
    values: list[float] = []
    for term in result.random_effects:
        for j in range(len(term.terms)):
            values.append(term.std_dev[j])
            values.extend(term.correlation[i][j] for i in range(j + 1, len(term.terms)))
    fixed = [fe.estimate for fe in result.fixed_effects if fe.estimate is not None]
    return [*values, result.residual_std_dev, *fixed]


@pytest.mark.parametrize(("model", "evaluation"), [
    ("sleepstudy", DenseObjective), ("one term, 200 columns", SingleTermObjective),
    ("crossed, 160 columns", Objective)])
def test_a_refit_is_the_full_fit_of_the_simulated_response(
        model: str, evaluation: type, sleepstudy: tuple[Design, FitResult]) -> None:
    # the refits reuse the fit's cross-products and rebuild only those with y: the same
    # model as fitting the simulated response from scratch (to the refits' tolerance),
    # whichever evaluation of the objective the design gets (dense, one term, blocked)
    design, result = {
        "sleepstudy": lambda: sleepstudy,
        "one term, 200 columns": lambda: _synthetic("y ~ x + (x | g)", 100),
        "crossed, 160 columns": lambda: _synthetic("y ~ x + (1 | g) + (1 | h)", 100),
    }[model]()
    fit = standardized_fit(design, result)
    assert type(refit_objective(fit.cp, "REML")) is evaluation
    simulator, refitter = Simulator(fit), Refitter(fit)
    rng = np.random.default_rng(7)
    for _ in range(3):
        y = simulator.draw(rng)
        values = refitter.refit(y)
        assert values is not None
        full = fit_lmm(replace(design, y=simulator.user_response(y)), "REML")
        assert values == pytest.approx(_sdcor_and_beta(full), rel=1e-4, abs=1e-5)


def test_a_seed_reproduces_the_run(sleepstudy: tuple[Design, FitResult]) -> None:
    design, result = sleepstudy
    first = parametric_bootstrap(design, result, 5, 123)
    again = parametric_bootstrap(design, result, 5, 123)
    other = parametric_bootstrap(design, result, 5, 124)
    assert np.array_equal(first.replicates, again.replicates)
    assert not np.array_equal(first.replicates, other.replicates)


def test_progress_is_reported_after_each_refit(sleepstudy: tuple[Design, FitResult]) -> None:
    design, result = sleepstudy
    seen: list[tuple[int, int]] = []
    parametric_bootstrap(design, result, 4, 1, lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_crossed_and_ml_fits_are_bootstrapped() -> None:
    # the general factor (two terms) and the ML criterion: intervals around the estimates
    for case in REFERENCE["profile"]["penicillin_crossed"], REFERENCE["profile"]["mood_lmer_ml"]:
        design, result = _fitted(case)
        sample = parametric_bootstrap(design, result, 40, 3)
        table = bootstrap_intervals(sample, 0.9)
        assert sample.failed == 0
        for row, estimate in zip(table.rows, sample.estimates, strict=True):
            assert row.lower is not None and row.upper is not None
            assert row.lower <= estimate <= row.upper or row.parm.startswith("cor_"), row


@pytest.mark.parametrize("level", ["0.95", "0.9", "0.5"])
def test_percentile_bounds_are_boots_norm_inter(level: str) -> None:
    values = np.array(REFERENCE["percentile"]["values"])
    got = percentile_bounds(values, float(level))
    assert got == pytest.approx(REFERENCE["percentile"]["levels"][level], rel=1e-12)


def test_percentile_bounds_at_integer_ranks_are_order_statistics() -> None:
    case = REFERENCE["percentile_integer_ranks"]
    values = np.array(case["values"])
    shuffled = np.random.default_rng(0).permutation(np.append(values, np.nan))
    assert percentile_bounds(shuffled, 0.95) == pytest.approx(case["bounds"], rel=1e-12)


def test_refusals() -> None:
    design, result = _fitted(BOOT)
    with pytest.raises(BootstrapError, match="nsim"):
        parametric_bootstrap(design, result, 0, 1)
    failed = BootstrapSample(names=("sigma",), estimates=np.ones(1),
                             replicates=np.full((3, 1), np.nan), failed=3)
    with pytest.raises(BootstrapError, match="Every bootstrap refit failed"):
        bootstrap_intervals(failed, 0.95)
