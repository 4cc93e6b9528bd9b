"""``result.fit_seconds`` is the engine's whole fit, formula to result, for every kind of
model (it was the mixed-model optimizer's part alone, and 0 for least squares): the design
that lmer builds in R is timed there too, and the service's overhead is measured against it."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

import service.stats.fit as fit

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize("formula", ["Reaction ~ Days + (Days | Subject)", "Reaction ~ Days",
                                     "Reaction ~ Days | Subject"])
def test_fit_seconds_covers_the_design_and_the_fit(formula: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    data = pd.read_csv(DATA / "sleepstudy.csv")
    data["Subject"] = data["Subject"].astype(str)
    original = fit.build_design
    pause = 0.05

    def slow_design(*args: object, **kwargs: object) -> object:
        time.sleep(pause)  # a design that takes a known time: it must be counted
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fit, "build_design", slow_design)
    monkeypatch.setattr(fit, "fit_groups", _slowed(fit.fit_groups, pause))
    started = time.perf_counter()
    fitted = fit.fit_model(formula, data)
    wall = time.perf_counter() - started
    assert pause <= fitted.result.fit_seconds <= wall


def _slowed(function: object, pause: float) -> object:
    def slowed(*args: object, **kwargs: object) -> object:
        time.sleep(pause)
        return function(*args, **kwargs)  # type: ignore[operator]
    return slowed
