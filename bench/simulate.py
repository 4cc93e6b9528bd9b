"""Deterministic datasets for the mixed-model benchmark.

Each dataset is written once as CSV into a cache directory (never committed) so that
mixedfit, lme4 and statsmodels all read the very same bytes. Generators are seeded, so
a rerun on any machine produces identical files.

Run ``python bench/simulate.py`` to (re)create the files and print where they are.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
SLEEPSTUDY_CSV = REPO / "tests" / "data" / "sleepstudy.csv"


def data_dir() -> Path:
    """Where the simulated CSV files live (``MIXEDFIT_BENCH_DATA`` or a temp dir)."""
    env = os.environ.get("MIXEDFIT_BENCH_DATA")
    path = Path(env) if env else Path(tempfile.gettempdir()) / "mixedfit-bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def simulate_slopes(
    n_rows: int = 200_000, n_groups: int = 2_000, seed: int = 20240401
) -> pd.DataFrame:
    """Random intercept and slope per group, correlated: ``y ~ x + (x | g)``.

    Every group gets ``n_rows // n_groups`` rows (the remainder goes to the first
    groups). True values: β = (10, 2), sd(intercept) = 2, sd(slope) = 0.5,
    correlation 0.3, σ = 1.
    """
    rng = np.random.default_rng(seed)
    g = np.sort(np.arange(n_rows) % n_groups)
    sd = np.array([2.0, 0.5])
    corr = np.array([[1.0, 0.3], [0.3, 1.0]])
    cov = corr * np.outer(sd, sd)
    b = rng.multivariate_normal(np.zeros(2), cov, size=n_groups)
    x = rng.uniform(0.0, 10.0, size=n_rows)
    y = 10.0 + 2.0 * x + b[g, 0] + b[g, 1] * x + rng.normal(0.0, 1.0, size=n_rows)
    return pd.DataFrame({"y": np.round(y, 6), "x": np.round(x, 6), "g": _labels("g", g)})


def simulate_crossed(
    n_rows: int = 100_000,
    levels: tuple[int, int, int] = (3_000, 1_000, 20),
    seed: int = 20240402,
) -> pd.DataFrame:
    """Three crossed random intercepts: ``y ~ x + (1 | f1) + (1 | f2) + (1 | f3)``.

    Levels are assigned uniformly at random and independently (InstEval-like: students
    × lecturers × departments, not nested). Every level occurs at least once.
    True values: β = (5, 0.5), sds 0.8, 0.5, 0.3 and σ = 1.
    """
    rng = np.random.default_rng(seed)
    sds = (0.8, 0.5, 0.3)
    x = rng.normal(0.0, 1.0, size=n_rows)
    y = 5.0 + 0.5 * x + rng.normal(0.0, 1.0, size=n_rows)
    columns: dict[str, object] = {}
    for k, (n_levels, sd) in enumerate(zip(levels, sds, strict=True), start=1):
        codes = rng.permutation(np.concatenate([
            np.arange(n_levels), rng.integers(0, n_levels, size=n_rows - n_levels)
        ]))
        y += rng.normal(0.0, sd, size=n_levels)[codes]
        columns[f"f{k}"] = _labels(f"f{k}_", codes)
    return pd.DataFrame({"y": np.round(y, 6), "x": np.round(x, 6), **columns})


def _labels(prefix: str, codes: np.ndarray) -> np.ndarray:
    # Text labels, so that no reader (R's read.csv, pandas) takes a factor for a number.
    width = len(str(int(codes.max())))
    return np.char.add(prefix, np.char.zfill(codes.astype(str), width)).astype(object)


@dataclass(frozen=True)
class Dataset:
    """A benchmark case: where its CSV is, the model, and its grouping columns."""

    name: str
    formula: str
    response: str
    covariate: str
    groups: tuple[str, ...]
    make: Callable[[], pd.DataFrame] | None  # None: a checked-in file, nothing to simulate
    file: Path | None = None

    @property
    def csv(self) -> Path:
        return self.file if self.file is not None else data_dir() / f"{self.name}.csv"

    def ensure(self) -> Path:
        """Write the CSV if it is not there yet and return its path."""
        path = self.csv
        if not path.exists():
            assert self.make is not None, f"{path} is missing"
            tmp = path.with_suffix(".tmp")
            self.make().to_csv(tmp, index=False)
            tmp.replace(path)  # atomic: a concurrent reader never sees half a file
        return path

    def load(self) -> pd.DataFrame:
        """Read the CSV as the service holds an upload: float64 numbers, text as objects."""
        path = self.ensure()
        try:
            from service.datasets.ingest import read_table
        except ImportError:  # the service's ingest is not there: mimic its column types
            df = pd.read_csv(path, dtype={g: object for g in self.groups})
            numeric = df.select_dtypes("number").columns
            return df.astype(dict.fromkeys(numeric, "float64"))
        return read_table(path.read_bytes(), "csv").frame


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "sleepstudy",
            "Reaction ~ Days + (Days | Subject)",
            "Reaction",
            "Days",
            ("Subject",),
            None,
            SLEEPSTUDY_CSV,
        ),
        Dataset("slopes200k", "y ~ x + (x | g)", "y", "x", ("g",), simulate_slopes),
        Dataset(
            "crossed100k",
            "y ~ x + (1 | f1) + (1 | f2) + (1 | f3)",
            "y",
            "x",
            ("f1", "f2", "f3"),
            simulate_crossed,
        ),
    )
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    args = parser.parse_args()
    for name in args.datasets:
        path = DATASETS[name].ensure()
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
