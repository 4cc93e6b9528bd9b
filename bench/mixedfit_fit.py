"""Fit one benchmark dataset with mixedfit's engine: timings, and peak memory.

``run.py`` imports :func:`fit_timed` to time fits in-process. Memory is measured by
running this file as ``python bench/mixedfit_fit.py <dataset> <REML|ML>`` in a fresh
process, which prints one line of JSON:

- ``rss_growth_bytes``: peak resident set size during build_design + fit_lmm minus the
  resident size just before it. Free heap memory is returned to the system first
  (glibc ``malloc_trim``) and the peak counter is reset (Linux ``/proc/self/clear_refs``),
  so that reading the CSV neither masks nor lends memory to the fit's own peak; where the
  reset is impossible, ``ru_maxrss`` growth is reported, which can only understate.
- ``tracemalloc_peak_bytes``: the largest amount of memory traced (Python objects and
  numpy buffers) at any moment of a second build_design + fit_lmm run.
- ``frame_bytes``: ``df.memory_usage(deep=True).sum()`` of the frame that was fitted.
"""

from __future__ import annotations

import ctypes
import gc
import json
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from simulate import DATASETS

PROC_STATUS = Path("/proc/self/status")


# Steps of fit_lmm timed separately when the engine module has them (looked up by name in
# service.stats.lmm at call time, so wrapping them there times them without touching the
# engine); a missing name is simply not reported.
ENGINE_STEPS = {
    "cross_products": "cross products",
    "minimize_theta": "optimizer",
    "variance_derivatives": "Satterthwaite derivatives",
    "ml_refit_deviance": "ML deviance",
    "make_result": "packaging",
}


@dataclass(frozen=True)
class Timed:
    """One fit and how long its steps took, in seconds."""

    result: Any  # service.stats.results.FitResult
    parse: float
    design: float
    fit: float
    cpu: float  # process CPU time of the three steps, all threads
    steps: dict[str, float] = field(default_factory=dict)  # parts of ``fit``

    @property
    def total(self) -> float:
        return self.parse + self.design + self.fit


def fit_timed(formula: str, df: pd.DataFrame, method: str) -> Timed:
    """Parse, build the design and fit, timing each step (the engine's own path)."""
    import service.stats.lmm as engine
    from service.stats.design import build_design
    from service.stats.formula import parse_formula

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    parsed = parse_formula(formula)
    t1 = time.perf_counter()
    design = build_design(parsed, df)
    t2 = time.perf_counter()
    with _timing_steps(engine) as steps:
        result = engine.fit_lmm(design, method)
    t3 = time.perf_counter()
    cpu = time.process_time() - cpu0
    return Timed(result, t1 - t0, t2 - t1, t3 - t2, cpu, steps)


@contextmanager
def _timing_steps(module: Any) -> Iterator[dict[str, float]]:
    steps: dict[str, float] = {}
    originals = {name: getattr(module, name) for name in ENGINE_STEPS if hasattr(module, name)}

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                label = ENGINE_STEPS[name]
                steps[label] = steps.get(label, 0.0) + time.perf_counter() - start

        return wrapper

    for name, function in originals.items():
        setattr(module, name, timed(name, function))
    try:
        yield steps
    finally:
        for name, function in originals.items():
            setattr(module, name, function)


def _status_kib(field: str) -> int | None:
    try:
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _release_free_heap() -> None:
    # Memory freed by reading the CSV stays resident in glibc's heap and would be reused
    # by the fit without raising RSS; hand it back so the growth measured is the fit's own.
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss() -> bool:
    # Writing 5 to clear_refs resets the kernel's peak-RSS mark (VmHWM), Linux >= 4.0.
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure_memory(name: str, method: str) -> dict[str, Any]:
    """Peak memory of build_design + fit_lmm on one dataset, in this process."""
    dataset = DATASETS[name]
    df = dataset.load()
    # A warm-up on a small slice loads every module and BLAS buffer the fit path uses,
    # so that code and library start-up are not counted as the fit's memory.
    try:
        fit_timed(dataset.formula, df.head(2_000), method)
    except Exception as exc:  # a failed warm-up only makes the figures larger
        print(f"warm-up failed: {exc!r}", file=sys.stderr)
    gc.collect()
    _release_free_heap()

    rss_before = _status_kib("VmRSS")
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hwm_reset = _reset_peak_rss()
    timed = fit_timed(dataset.formula, df, method)
    if hwm_reset and rss_before is not None and (hwm := _status_kib("VmHWM")) is not None:
        rss_growth_kib, how = hwm - rss_before, "VmHWM after reset - VmRSS before"
    else:
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_growth_kib, how = maxrss - maxrss_before, "ru_maxrss growth"
    del timed
    gc.collect()

    tracemalloc.start()
    fit_timed(dataset.formula, df, method)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    return {
        "dataset": name,
        "frame_bytes": int(df.memory_usage(deep=True).sum()),
        "rss_growth_bytes": rss_growth_kib * 1024,
        "rss_method": how,
        "tracemalloc_peak_bytes": traced_peak,
    }


if __name__ == "__main__":
    print(json.dumps(measure_memory(sys.argv[1], sys.argv[2])))
