"""Writes the simulated data sets of tests/stats/test_lmm_numerics.py (run once; the CSVs
are committed so that no test depends on a random-number stream)."""

from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1]


def shifted() -> pd.DataFrame:
    """y ~ x + (1 + x | g): 300 rows, 15 groups, residual SD 1."""
    rng = np.random.default_rng(20261201)
    n, groups = 300, 15
    g = rng.integers(0, groups, n)
    x = rng.normal(size=n)
    b0 = rng.normal(size=groups)
    b1 = rng.normal(scale=0.5, size=groups)
    y = 1 + 2 * x + b0[g] + b1[g] * x + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i:02d}" for i in g]})


def collinear() -> pd.DataFrame:
    """Two covariates with correlation 0.999, random intercepts of 12 groups."""
    rng = np.random.default_rng(7)
    n, groups = 240, 12
    g = rng.integers(0, groups, n)
    x1 = rng.normal(size=n)
    x2 = 0.999 * x1 + np.sqrt(1 - 0.999**2) * rng.normal(size=n)
    y = 0.5 + x1 - 0.5 * x2 + rng.normal(scale=0.8, size=groups)[g] + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": [f"s{i}" for i in g]})


def small() -> pd.DataFrame:
    """45 rows, 9 groups of 5, random intercept and slope."""
    rng = np.random.default_rng(45)
    g = np.repeat(np.arange(9), 5)
    x = np.tile(np.arange(5.0), 9)
    y = (3 + 0.4 * x + rng.normal(scale=1.0, size=9)[g]
         + rng.normal(scale=0.3, size=9)[g] * x + rng.normal(scale=0.7, size=45))
    return pd.DataFrame({"y": y, "x": x, "g": [f"k{i}" for i in g]})


if __name__ == "__main__":
    for name, frame in (("shifted", shifted()), ("collinear", collinear()),
                        ("small45", small())):
        frame.to_csv(DATA / f"{name}.csv", index=False, float_format="%.17g")
