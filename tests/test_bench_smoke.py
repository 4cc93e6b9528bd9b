"""The benchmark's data generators work, at tiny sizes (no timing, no R needed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench.simulate import DATASETS, Dataset, simulate_crossed, simulate_slopes


def test_slopes_has_the_requested_groups_and_is_seeded() -> None:
    df = simulate_slopes(n_rows=1_000, n_groups=10, seed=1)

    assert list(df.columns) == ["y", "x", "g"]
    assert len(df) == 1_000
    assert df["g"].value_counts().tolist() == [100] * 10
    pd.testing.assert_frame_equal(df, simulate_slopes(n_rows=1_000, n_groups=10, seed=1))
    assert not df.equals(simulate_slopes(n_rows=1_000, n_groups=10, seed=2))


def test_slopes_recovers_the_true_fixed_effects_roughly() -> None:
    df = simulate_slopes(n_rows=20_000, n_groups=200, seed=3)
    slope = df["x"].cov(df["y"]) / df["x"].var()
    # True slope 2 with a between-group slope sd of 0.5 over 200 groups: the pooled
    # estimate's standard error is about 0.5 / sqrt(200) ~ 0.035, so 0.2 is > 5 SE.
    assert slope == pytest.approx(2.0, abs=0.2)


def test_crossed_uses_every_level_of_every_factor() -> None:
    df = simulate_crossed(n_rows=600, levels=(50, 20, 5), seed=4)

    assert list(df.columns) == ["y", "x", "f1", "f2", "f3"]
    assert [df[f].nunique() for f in ("f1", "f2", "f3")] == [50, 20, 5]
    pd.testing.assert_frame_equal(df, simulate_crossed(n_rows=600, levels=(50, 20, 5), seed=4))


def test_dataset_writes_its_csv_once_and_reads_groups_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIXEDFIT_BENCH_DATA", str(tmp_path))
    tiny = Dataset("tiny", "y ~ x + (x | g)", "y", "x", ("g",),
                   lambda: simulate_slopes(n_rows=40, n_groups=4))

    path = tiny.ensure()
    written = path.stat().st_mtime_ns
    df = tiny.load()

    assert path == tmp_path / "tiny.csv"
    assert tiny.ensure().stat().st_mtime_ns == written
    assert len(df) == 40
    assert df["g"].map(type).eq(str).all()


def test_sleepstudy_is_the_checked_in_copy() -> None:
    df = DATASETS["sleepstudy"].load()

    assert df.shape == (180, 3)
    assert df["Subject"].nunique() == 18
