"""Recoding new rows' labels into a fitted encoder's levels: the few-rows pass in Python and
numpy's pass for many rows agree, and an encoder keeps each of its level tuples' index (by
the tuple's identity) instead of hashing every level on every call."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from service.stats.design import build_design
from service.stats.design.encoder import CATEGORICAL, FEW_ROWS, level_positions, recode
from service.stats.formula import parse_formula


@pytest.mark.parametrize("kinds", [(CATEGORICAL,), ("numeric",), (CATEGORICAL, "numeric")])
def test_few_and_many_rows_recode_alike(kinds: tuple[str, ...]) -> None:
    rng = np.random.default_rng(3)
    if kinds == ("numeric",):
        levels = ("1", "2.5", "100000")
        pool = ["1", "1.0", "2.5", "1e+05", "7", "0.5"]  # 1.0 and 1e+05 are fitted values
    elif len(kinds) == 2:
        levels = ("a:1", "b:2", "c:100000")
        pool = ["a:1", "a:1.0", "b:2", "c:1e5", "d:1", "b:3"]
    else:
        levels = ("a", "b", "c")
        pool = ["a", "b", "c", "new", "other"]
    labels = tuple(pool)
    known = level_positions(levels, kinds)  # type: ignore[arg-type]
    for n in (0, 1, 3, FEW_ROWS, FEW_ROWS + 1, 500):
        codes = rng.integers(-1, len(labels), size=n).astype(np.intp)
        few, unknown_few = recode(codes, labels, levels, kinds)  # type: ignore[arg-type]
        with_known, unknown_known = recode(codes, labels, levels, kinds,  # type: ignore[arg-type]
                                           known=known)
        # the reference: each label's level by key, row by row, in plain Python
        want = [-1 if c < 0 else known.get(_key(labels[c], kinds), -1) for c in codes]
        assert few.dtype == with_known.dtype == np.intp
        assert few.tolist() == with_known.tolist() == want
        assert unknown_few == unknown_known == [
            label for label in labels if known.get(_key(label, kinds), -1) < 0]


def _key(label: str, kinds: tuple[str, ...]) -> str:
    from service.stats.design.values import level_key

    return level_key(label, kinds)  # type: ignore[arg-type]


def test_an_encoder_builds_each_level_index_once_and_by_identity() -> None:
    frame = pd.DataFrame({"y": np.arange(12.0), "x": np.tile([0.0, 1.0, 2.0], 4),
                          "g": [f"s{i % 4}" for i in range(12)]})
    encoder = build_design(parse_formula("y ~ x + (1 | g)"), frame).encoder
    levels = encoder.random[0].levels
    first = encoder.level_index(levels, (CATEGORICAL,))
    assert encoder.level_index(levels, (CATEGORICAL,)) is first
    assert first == {level: i for i, level in enumerate(levels)}
    # another tuple of the same levels: its own index, never the first one by a reused id
    reordered = tuple(reversed(levels))
    assert encoder.level_index(reordered, (CATEGORICAL,)) == {
        level: i for i, level in enumerate(reordered)}
