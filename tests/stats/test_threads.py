"""Every fit runs one BLAS thread, however it is called (issue 8: OMP_NUM_THREADS was set
after numpy's import, so each fit used a thread per core for twice the CPU time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import service.stats.lmm as engine
from service.stats.fit import fit_model

DATA = Path(__file__).resolve().parents[1] / "data"


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.mark.parametrize("formula", ["Reaction ~ Days + (Days | Subject)", "Reaction ~ Days"])
def test_fit_model_runs_one_blas_thread_and_restores_the_setting(
        formula: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[int]] = []
    original = engine.cross_products

    def recording(*args: Any) -> Any:
        seen.append(_blas_threads())
        return original(*args)

    monkeypatch.setattr(engine, "cross_products", recording)
    import service.stats.ols as ols
    original_ols = ols.fit_ols

    def recording_ols(*args: Any) -> Any:
        seen.append(_blas_threads())
        return original_ols(*args)

    monkeypatch.setattr("service.stats.fit.fit_ols", recording_ols)
    frame = pd.read_csv(DATA / "sleepstudy.csv")
    # a caller whose BLAS runs two threads (the default on a 2-core machine)
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        assert before and all(threads == 2 for threads in before)
        fit_model(formula, frame)
        assert _blas_threads() == before
    assert seen and all(threads == [1] * len(threads) for threads in seen)
