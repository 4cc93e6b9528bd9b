"""Write the differential test cases: seeded synthetic designs plus lme4's, MixedModels.jl's
and nlme's own test models, as a manifest and one gzipped CSV per data set.

Regenerate everything (data, manifest, lme4's answers) from the repository root with

    python tests/differential/generate.py && Rscript tests/differential/reference.R

This script writes ``tests/differential/cases.json`` and the synthetic data
``tests/differential/data/<id>.csv.gz``; ``reference.R`` exports the data sets that R ships
(``tests/differential/data/r_<name>.csv.gz``) and writes lme4's answers to
``tests/differential/expected/<id>.json``. The data are committed, so the tests never depend
on numpy's random streams: each synthetic case draws from its own
``numpy.random.default_rng([family seed, case number])``, and the CSVs are the record.

CSV conventions, read the same way on both sides (see ``reference.R``): missing values are
written ``NA``; text columns become factors in R (``stringsAsFactors = TRUE``, C collation,
as Python's ``sorted``) and categorical columns in the service; numeric grouping columns stay
numeric in the file and become factors inside lme4 (and level labels such as ``3`` in the
service); logical columns are written ``TRUE``/``FALSE``. Floats are written with Python's
shortest round-trip representation and read back exactly (pandas ``float_precision=
"round_trip"``, R's ``strtod``).
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
MANIFEST = HERE / "cases.json"

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
Rng = np.random.Generator


@dataclass
class Case:
    """One model to fit: a formula, a method and its data (synthetic or shipped with R)."""

    id: str
    family: str
    formula: str
    method: str
    notes: str
    frame: pd.DataFrame | None = None  # synthetic data; None for data exported by R
    source: str = "generated"
    data: str = ""  # file under tests/differential/, set when written
    r_dataset: str | None = None  # "package::name" for data that R ships
    columns: Sequence[str] = ()  # columns of an R data set to export
    published: list[dict[str, Any]] = field(default_factory=list)

    def manifest(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": self.id, "family": self.family, "source": self.source,
            "formula": self.formula, "method": self.method, "data": self.data,
            "notes": self.notes,
        }
        if self.frame is not None:
            entry["n_rows"] = len(self.frame)
            entry["seed"] = [FAMILY_SEEDS[self.family], int(self.id.rsplit("_", 1)[-1])]
        if self.r_dataset is not None:
            entry["r_dataset"] = self.r_dataset
            entry["columns"] = list(self.columns)
        if self.published:
            entry["published"] = self.published
        return entry


# ----------------------------------------------------------------------------------------
# building blocks


def rng_for(family: str, number: int) -> Rng:
    return np.random.default_rng([FAMILY_SEEDS[family], number])


def covariance(sds: Sequence[float], corr: float | FloatArray) -> FloatArray:
    """A covariance matrix from standard deviations and a common correlation (or a matrix)."""
    s = np.asarray(sds, dtype=float)
    q = len(s)
    if isinstance(corr, float | int):
        r = np.full((q, q), float(corr))
    else:
        r = np.array(corr, dtype=float)
    np.fill_diagonal(r, 1.0)
    return np.outer(s, s) * r


def effects(rng: Rng, n_levels: int, sds: Sequence[float],
            corr: float | FloatArray = 0.0) -> FloatArray:
    """Random effects per level, (levels, q), drawn from N(0, Σ) (Σ may be singular)."""
    cov = covariance(sds, corr)
    values, vectors = np.linalg.eigh(cov)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    return np.asarray(rng.standard_normal((n_levels, len(sds))) @ root.T)


def assign(rng: Rng, n_levels: int, size: int, scheme: str = "balanced") -> IntArray:
    """Level codes of the rows: balanced, random (every level at least once) or unbalanced."""
    if scheme == "balanced":
        return np.repeat(np.arange(n_levels), size).astype(np.intp)
    if scheme == "random":
        extra = rng.integers(0, n_levels, n_levels * (size - 1))
        return np.sort(np.concatenate([np.arange(n_levels), extra])).astype(np.intp)
    if scheme == "unbalanced":
        sizes = 1 + rng.geometric(1.0 / size, n_levels)
        return np.repeat(np.arange(n_levels), sizes).astype(np.intp)
    raise ValueError(scheme)


def labels(codes: IntArray, n_levels: int, style: str, rng: Rng) -> np.ndarray:
    """Level labels of the codes in one of several styles (numeric or text)."""
    table: list[Any]
    if style == "int":
        table = list(range(1, n_levels + 1))
    elif style == "sparse_int":
        table = sorted(int(v) for v in rng.choice(10**6, n_levels, replace=False) + 100)
        table = list(rng.permutation(np.asarray(table)))
    elif style == "negative_int":
        table = list(range(-(n_levels // 2), n_levels - n_levels // 2))
    elif style == "float":
        table = [0.25 * i + 0.5 for i in range(n_levels)]
    elif style == "text":
        width = len(str(n_levels))
        table = [f"g{i:0{width}d}" for i in range(1, n_levels + 1)]
    elif style == "text_mixed":
        stems = ["alpha", "Beta", "gamma", "Delta", "eps", "Zeta", "eta", "Theta"]
        table = [f"{stems[i % len(stems)]}{i // len(stems)}" for i in range(n_levels)]
    elif style == "text_space":
        table = [f"site {i + 1}" for i in range(n_levels)]
    elif style == "padded":  # "001": read as the numbers 1, 2, ... by both R and pandas
        table = [f"{i + 1:03d}" for i in range(n_levels)]
    elif style == "bool":
        table = ["FALSE", "TRUE"][:n_levels]
    else:
        raise ValueError(style)
    return np.asarray(table, dtype=object)[codes]


def round_values(values: FloatArray, digits: int = 4) -> FloatArray:
    return np.round(np.asarray(values, dtype=float), digits)


def normal(rng: Rng, n: int, mean: float = 0.0, sd: float = 1.0) -> FloatArray:
    return round_values(rng.normal(mean, sd, n), 4)


def put_missing(rng: Rng, frame: pd.DataFrame, column: str, fraction: float) -> None:
    """Blank out a fraction of a column (as NA in the CSV)."""
    n = len(frame)
    rows = rng.choice(n, max(1, int(round(fraction * n))), replace=False)
    values = frame[column].astype(object).to_numpy().copy()
    values[rows] = None
    frame[column] = values


def ri_response(rng: Rng, fixed: FloatArray, codes: IntArray, sd: float,
                sigma: float = 1.0) -> FloatArray:
    b = rng.normal(0.0, sd, int(codes.max()) + 1)
    return np.asarray(fixed + b[codes] + rng.normal(0.0, sigma, len(codes)))


def slope_response(rng: Rng, fixed: FloatArray, codes: IntArray, z: FloatArray,
                   sds: Sequence[float], corr: float | FloatArray,
                   sigma: float = 1.0) -> FloatArray:
    """Xβ + Σ_j z_j b_j[g] + ε, z the n × q random-effects covariates (first column 1)."""
    b = effects(rng, int(codes.max()) + 1, sds, corr)
    return np.asarray(fixed + np.einsum("ij,ij->i", z, b[codes])
                      + rng.normal(0.0, sigma, len(codes)))


def frame_of(**columns: Any) -> pd.DataFrame:
    return pd.DataFrame({name: values for name, values in columns.items()})


# ----------------------------------------------------------------------------------------
# the synthetic families

FAMILY_SEEDS: dict[str, int] = {
    "ri": 101, "slopes": 102, "uncorr": 103, "crossed": 104, "nested": 105,
    "interaction": 106, "factors": 107, "transforms": 108, "missing": 109, "tiny": 110,
    "singular": 111, "grouping": 112, "large_mean": 113, "badly_scaled": 114, "large": 115,
}


def family_ri() -> Iterator[Case]:
    """Random intercepts: 4 to 100 levels, balanced and random sizes, 0 to 2 covariates."""
    shapes = [(4, 8), (6, 5), (10, 3), (20, 4), (50, 3), (100, 3),
              (5, 20), (8, 10), (12, 6), (30, 5), (40, 8), (15, 2)]
    styles = ["int", "text", "sparse_int", "text", "int", "text"]
    for i in range(24):
        rng = rng_for("ri", i)
        n_levels, size = shapes[i % len(shapes)]
        scheme = "balanced" if i % 2 == 0 else "random"
        codes = assign(rng, n_levels, max(size, math.ceil(30 / n_levels)), scheme)
        n = len(codes)
        x1, x2 = normal(rng, n), normal(rng, n, 5.0, 2.0)
        fixed = 2.0 + 0.5 * x1 - 0.3 * x2
        sd = [0.3, 1.0, 2.0, 5.0][i % 4]
        y = round_values(ri_response(rng, fixed, codes, sd))
        formula = ["y ~ 1 + (1 | g)", "y ~ x1 + (1 | g)", "y ~ x1 + x2 + (1 | g)"][i % 3]
        yield Case(f"ri_{i:02d}", "ri", formula, "ML" if i % 4 == 3 else "REML",
                   f"{n_levels} levels, {scheme}, sd_b {sd}",
                   frame_of(y=y, x1=x1, x2=x2, g=labels(codes, n_levels, styles[i % 6], rng)))


def family_slopes() -> Iterator[Case]:
    """Correlated random slopes on 1 to 3 covariates (q = 2..4)."""
    formulas = [
        "y ~ x1 + (x1 | g)",
        "y ~ x1 + (1 + x1 | g)",
        "y ~ x1 + x2 + (x1 + x2 | g)",
        "y ~ x1 + x2 + x3 + (x1 + x2 + x3 | g)",
        "y ~ x1 + x2 + (x1 | g)",
        "y ~ 1 + (0 + x1 + x2 | g)",
    ]
    corrs = [-0.5, 0.0, 0.3, 0.8, -0.2]
    shapes = [(10, 8), (15, 6), (30, 5), (60, 6), (8, 12), (20, 10)]
    for i in range(30):
        rng = rng_for("slopes", i)
        formula = formulas[i % len(formulas)]
        n_levels, size = shapes[(i // len(formulas) + i) % len(shapes)]
        codes = assign(rng, n_levels, size, "balanced" if i % 3 else "random")
        n = len(codes)
        x1, x2, x3 = normal(rng, n), normal(rng, n, 0, 2), normal(rng, n, 1, 0.5)
        if i % 7 == 6:  # a covariate constant within groups (a group-level slope)
            x1 = round_values(rng.normal(size=n_levels)[codes])
        z = np.column_stack([np.ones(n), x1, x2, x3])
        sds = [1.0, 0.5, 0.3, 0.4]
        y = round_values(slope_response(rng, 1.0 + x1 - 0.5 * x2 + 0.2 * x3, codes, z, sds,
                                        corrs[i % len(corrs)]))
        yield Case(f"slopes_{i:02d}", "slopes", formula, "ML" if i % 3 == 2 else "REML",
                   f"{n_levels} levels of {size}, corr {corrs[i % len(corrs)]}",
                   frame_of(y=y, x1=x1, x2=x2, x3=x3,
                            g=labels(codes, n_levels, ["int", "text"][i % 2], rng)))


def family_uncorr() -> Iterator[Case]:
    """Uncorrelated slopes: ``(x || g)`` and the equivalent split bars."""
    formulas = [
        "y ~ x1 + (x1 || g)",
        "y ~ x1 + x2 + (x1 + x2 || g)",
        "y ~ x1 + x2 + x3 + (x1 + x2 + x3 || g)",
        "y ~ x1 + (1 | g) + (0 + x1 | g)",
        "y ~ x1 + x2 + (1 + x1 || g) + (0 + x2 | g)",
    ]
    for i in range(20):
        rng = rng_for("uncorr", i)
        formula = formulas[i % len(formulas)]
        n_levels, size = [(12, 6), (25, 5), (40, 4), (18, 10)][i % 4]
        codes = assign(rng, n_levels, size, "balanced" if i % 2 else "random")
        n = len(codes)
        x1, x2, x3 = normal(rng, n), normal(rng, n, 2, 1), normal(rng, n)
        z = np.column_stack([np.ones(n), x1, x2, x3])
        corr = 0.0 if i < 10 else 0.5  # the second half is misspecified (true correlation)
        y = round_values(slope_response(rng, 3.0 + 0.5 * x1 + 0.1 * x2, codes, z,
                                        [1.2, 0.6, 0.4, 0.3], corr))
        yield Case(f"uncorr_{i:02d}", "uncorr", formula, "ML" if i % 4 == 1 else "REML",
                   f"{n_levels} levels, true corr {corr}",
                   frame_of(y=y, x1=x1, x2=x2, x3=x3,
                            g=labels(codes, n_levels, ["text", "int"][i % 2], rng)))


def family_crossed() -> Iterator[Case]:
    """Crossed grouping factors, fully or partly crossed, with ties in the level counts."""
    formulas = [
        "y ~ x + (1 | a) + (1 | b)",
        "y ~ 1 + (1 | a) + (1 | b)",
        "y ~ x + (x | a) + (1 | b)",
        "y ~ x + (1 | a) + (0 + x | b)",
        "y ~ 1 + (1 | a) + (1 | b) + (1 | c)",
        "y ~ x + (x || a) + (1 | b)",
        "y ~ x + (1 | b) + (x | a)",
    ]
    shapes = [(20, 8, 1), (12, 12, 2), (30, 5, 1), (10, 10, 1), (25, 15, 1)]
    for i in range(20):
        rng = rng_for("crossed", i)
        formula = formulas[i % len(formulas)]
        la, lb, reps = shapes[i % len(shapes)]
        lc = 6
        a = np.repeat(np.arange(la), lb * reps)
        b = np.tile(np.repeat(np.arange(lb), reps), la)
        if i % 3 == 1:  # partly crossed: keep about 60% of the cells
            keep = rng.random(len(a)) < 0.6
            keep[: la] = True
            a, b = a[keep], b[keep]
            a[:la] = np.arange(la)
            b[:lb] = np.arange(lb)
        n = len(a)
        c = rng.integers(0, lc, n)
        x = normal(rng, n)
        ea = effects(rng, la, [1.0, 0.4], -0.3)
        eb = effects(rng, lb, [0.7, 0.3], 0.0)
        ec = rng.normal(0, 0.5, lc)
        y = 5 + 0.3 * x + ea[a, 0] + x * ea[a, 1] + eb[b, 0] + x * eb[b, 1] + ec[c]
        y = round_values(y + rng.normal(0, 1, n))
        style = ["int", "text"][i % 2]
        yield Case(f"crossed_{i:02d}", "crossed", formula, "ML" if i % 5 == 4 else "REML",
                   f"{la} x {lb} levels, {'partly' if i % 3 == 1 else 'fully'} crossed",
                   frame_of(y=y, x=x, a=labels(a.astype(np.intp), la, style, rng),
                            b=labels(b.astype(np.intp), lb, "text", rng),
                            c=labels(c.astype(np.intp), lc, "int", rng)))


def family_nested() -> Iterator[Case]:
    """Nested factors ``(1 | a/b)`` and ``(1 | a/b/c)``, inner labels reused across outers."""
    formulas = [
        "y ~ x + (1 | a/b)",
        "y ~ 1 + (1 | a/b)",
        "y ~ x + (x | a/b)",
        "y ~ x + (1 | a/b/c)",
        "y ~ x + (1 | a) + (1 | a:b)",
    ]
    for i in range(15):
        rng = rng_for("nested", i)
        formula = formulas[i % len(formulas)]
        la, lb, lc, reps = [(8, 4, 2, 3), (12, 3, 2, 2), (6, 5, 3, 2)][i % 3]
        a = np.repeat(np.arange(la), lb * lc * reps)
        b = np.tile(np.repeat(np.arange(lb), lc * reps), la)
        c = np.tile(np.repeat(np.arange(lc), reps), la * lb)
        n = len(a)
        x = normal(rng, n)
        ea = rng.normal(0, 1.0, la)
        eb = effects(rng, la * lb, [0.7, 0.3], 0.2)
        ec = rng.normal(0, 0.5, la * lb * lc)
        ab = a * lb + b
        y = 10 + 0.5 * x + ea[a] + eb[ab, 0] + x * eb[ab, 1] + ec[ab * lc + c]
        y = round_values(y + rng.normal(0, 0.8, n))
        yield Case(f"nested_{i:02d}", "nested", formula, "ML" if i % 4 == 2 else "REML",
                   f"{la} outer levels, {lb} inner per outer (labels reused)",
                   frame_of(y=y, x=x,
                            a=labels(a.astype(np.intp), la, ["text", "int"][i % 2], rng),
                            b=labels(b.astype(np.intp), lb, ["int", "text"][i % 2], rng),
                            c=labels(c.astype(np.intp), lc, "int", rng)))


def family_interaction() -> Iterator[Case]:
    """Grouping by an interaction ``a:b`` of crossed factors."""
    formulas = [
        "y ~ x + (1 | a:b)",
        "y ~ x + (1 | a) + (1 | a:b)",
        "y ~ x + (1 | b) + (1 | a:b)",
        "y ~ x + (1 | a) + (1 | b) + (1 | a:b)",
        "y ~ x + (x | a:b)",
    ]
    for i in range(10):
        rng = rng_for("interaction", i)
        formula = formulas[i % len(formulas)]
        la, lb, reps = [(6, 5, 3), (10, 4, 2)][i % 2]
        a = np.repeat(np.arange(la), lb * reps)
        b = np.tile(np.repeat(np.arange(lb), reps), la)
        n = len(a)
        x = normal(rng, n)
        eab = effects(rng, la * lb, [0.8, 0.4], 0.0)
        y = 2 + x + rng.normal(0, 0.6, la)[a] + rng.normal(0, 0.5, lb)[b]
        y = round_values(y + eab[a * lb + b, 0] + x * eab[a * lb + b, 1] + rng.normal(0, 1, n))
        q = 2 if "(x |" in formula else 1
        note = f"{la} x {lb} cells of {reps}"
        if la * lb * q >= n:
            note += "; lme4 refuses it: as many random effects as rows"
        yield Case(f"interaction_{i:02d}", "interaction", formula,
                   "ML" if i % 3 == 2 else "REML", note,
                   frame_of(y=y, x=x,
                            a=labels(a.astype(np.intp), la, ["text", "int"][i % 2], rng),
                            b=labels(b.astype(np.intp), lb, "text", rng)))


def family_factors() -> Iterator[Case]:
    """Factor fixed effects, interactions with covariates and factors, rank deficiency."""
    formulas = [
        ("y ~ f + (1 | g)", "f within groups"),
        ("y ~ x * f + (1 | g)", "x * f"),
        ("y ~ f1 * f2 + (1 | g)", "factor interaction"),
        ("y ~ factor(k) + (1 | g)", "factor() of a numeric column"),
        ("y ~ x:f + (1 | g)", "x:f without main effects (indicator coding of f)"),
        ("y ~ 0 + f + (1 | g)", "no intercept: all levels of f"),
        ("y ~ f + x + (x | g)", "factor and random slope"),
        ("y ~ flag + (1 | g)", "logical column"),
        ("y ~ fg + (1 | g)", "between-group factor (constant within g)"),
        ("y ~ f + (1 | g) + (1 | f:g)", "factor and factor-by-group intercepts"),
        ("y ~ f2 + (f2 | g)", "two-level factor in the random term"),
        ("y ~ f2 + (0 + f2 | g)", "all levels of a factor in the random term"),
        ("y ~ x * f1 * f2 + (1 | g)", "three-way interaction"),
        ("y ~ x1 + x2 + (1 | g)", "aliased covariate x2 = 2 x1 + 3 (dropped)"),
        ("y ~ f1 * f2 + (1 | g)", "an empty cell of f1:f2 (aliased column dropped)"),
        ("y ~ fm + (1 | g)", "mixed-case levels (C collation: B < a)"),
        ("y ~ fs + x + (1 | g)", "levels with spaces"),
        ("y ~ factor(kf) + (1 | g)", "factor() of non-integer numbers"),
        ("y ~ factor(k) * x + (1 | g)", "factor() interacting with a covariate"),
        ("y ~ f - 1 + x + (1 | g)", "'- 1' removes the intercept"),
        ("y ~ f + f1 + (1 | g)", "two additive factors"),
        ("y ~ x + f:x + (x | g)", "slope by factor"),
        ("y ~ f * flag + (1 | g)", "factor by logical"),
        ("y ~ f1 + (1 | g) + (1 | f1:g)", "factor and nested-in-factor intercepts"),
    ]
    for i, (formula, note) in enumerate(formulas):
        rng = rng_for("factors", i)
        n_levels, size = [(12, 8), (20, 6), (8, 15)][i % 3]
        codes = assign(rng, n_levels, size, "balanced" if i % 2 else "random")
        n = len(codes)
        x = normal(rng, n)
        f_codes = rng.integers(0, 3, n)
        f1_codes = rng.integers(0, 2, n)
        f2_codes = rng.integers(0, 2, n)
        if i == 14:  # empty cell: no row has f1 = "p", f2 = "v"
            f2_codes = np.where(f1_codes == 0, 0, f2_codes)
        k = rng.integers(1, 5, n)
        fixed = 1.0 + 0.5 * x + np.array([0.0, 1.0, -0.5])[f_codes] + 0.7 * f1_codes
        fixed += -0.4 * f2_codes + 0.3 * f1_codes * f2_codes + 0.2 * k + 0.3 * x * f_codes
        z = np.column_stack([np.ones(n), x, f2_codes])
        y = round_values(slope_response(rng, fixed, codes, z, [1.0, 0.4, 0.5], 0.2))
        f = np.asarray(["lo", "mid", "hi"], dtype=object)[f_codes]
        frame = frame_of(
            y=y, x=x, x1=x, x2=round_values(2 * x + 3), f=f,
            f1=np.asarray(["p", "q"], dtype=object)[f1_codes],
            f2=np.asarray(["u", "v"], dtype=object)[f2_codes],
            k=k, kf=np.asarray([0.5, 1.5, 2.5, 10.25])[k - 1],
            flag=np.asarray(["FALSE", "TRUE"], dtype=object)[f1_codes],
            fg=np.asarray(["ctl", "trt"], dtype=object)[(np.arange(n_levels) % 2)[codes]],
            fm=np.asarray(["a", "B", "c"], dtype=object)[f_codes],
            fs=np.asarray(["low dose", "high dose", "none"], dtype=object)[f_codes],
            g=labels(codes, n_levels, ["text", "int"][i % 2], rng))
        keep = [c for c in frame.columns if c in _names_in(formula)]
        yield Case(f"factors_{i:02d}", "factors", formula, "ML" if i % 4 == 3 else "REML",
                   note, frame[keep])


def family_transforms() -> Iterator[Case]:
    """Transforms the parser supports: log, log2, log10, log1p, exp, sqrt, abs, scale, poly,
    I(), factor(), in fixed and random terms and the response."""
    formulas = [
        "y ~ log(xp) + (1 | g)",
        "y ~ exp(x) + (1 | g)",
        "y ~ sqrt(xp) + (1 | g)",
        "y ~ scale(xm) + (1 | g)",
        "y ~ poly(x, 2) + (1 | g)",
        "y ~ poly(x, 3) + (1 | g)",
        "y ~ x + I(x^2) + (1 | g)",
        "y ~ x + I(x^2) + (x | g)",
        "y ~ I(x * xp) + (1 | g)",
        "y ~ I(xm - 50) + (I(xm - 50) | g)",
        "log(yp) ~ x + (1 | g)",
        "sqrt(yp) ~ x + (1 | g)",
        "y ~ log(xp + 1) + (1 | g)",
        "y ~ log2(xp) + log10(xp + 2) + (1 | g)",
        "y ~ log1p(xp) + abs(x) + (1 | g)",
        "y ~ factor(k) * x + (1 | g)",
        "y ~ scale(xm) + (scale(xm) | g)",
        "y ~ poly(x, 2) + (x | g)",
        "y ~ x + I(x^3) + (1 | g)",
        "y ~ I(xm/100) + (1 | g)",
        "y ~ exp(-x) + (1 | g)",
        "I(2 * y + 1) ~ x + (1 | g)",
        "y ~ log(xp) + (log(xp) | g)",
        "y ~ scale(x) * f + (1 | g) + (0 + I(x^2) | g)",
    ]
    for i, formula in enumerate(formulas):
        rng = rng_for("transforms", i)
        n_levels, size = [(15, 6), (25, 5), (10, 12)][i % 3]
        codes = assign(rng, n_levels, size, "random" if i % 2 else "balanced")
        n = len(codes)
        x = normal(rng, n)
        xp = round_values(np.exp(rng.normal(0.5, 0.6, n)))
        xm = normal(rng, n, 50, 10)
        k = rng.integers(1, 4, n)
        f = np.asarray(["a", "b"], dtype=object)[rng.integers(0, 2, n)]
        z = np.column_stack([np.ones(n), x, np.log(xp)])
        fixed = 4 + 0.8 * x - 0.3 * x**2 + np.log(xp) + 0.05 * (xm - 50) + 0.2 * k
        y = slope_response(rng, fixed, codes, z, [1.0, 0.3, 0.3], 0.1)
        yp = round_values(np.exp(0.1 * y))
        frame = frame_of(y=round_values(y), yp=yp, x=x, xp=xp, xm=xm, k=k, f=f,
                         g=labels(codes, n_levels, ["int", "text"][i % 2], rng))
        keep = [c for c in frame.columns
                if c == "g" or any(c == t for t in _names_in(formula))]
        yield Case(f"transforms_{i:02d}", "transforms", formula,
                   "ML" if i % 4 == 1 else "REML", "transform", frame[keep])


def _names_in(formula: str) -> set[str]:
    token = ""
    names = set()
    for ch in formula + " ":
        if ch.isalnum() or ch in "._":
            token += ch
        else:
            if token:
                names.add(token)
            token = ""
    return names


def family_missing() -> Iterator[Case]:
    """Missing values in the response, covariates, factors and grouping columns."""
    specs = [
        ("y ~ x + (1 | g)", ["y"], "int"),
        ("y ~ x + (1 | g)", ["x"], "text"),
        ("y ~ x + (1 | g)", ["g"], "int"),
        ("y ~ x + (1 | g)", ["g"], "text"),
        ("y ~ x + f + (1 | g)", ["f"], "text"),
        ("y ~ x + (x | g)", ["y", "x", "g"], "int"),
        ("y ~ x + (1 | g)", ["z"], "text"),  # NA only in a column the formula does not use
        ("y ~ x + (1 | g)", ["y:group"], "int"),  # every y of one level missing
        ("y ~ x + (1 | a) + (1 | b)", ["b"], "text"),
        ("y ~ x + (1 | a/b)", ["b"], "int"),
        ("y ~ log(xp) + (1 | g)", ["xp"], "text"),
        ("y ~ scale(x) + (1 | g)", ["y"], "int"),  # R's scale() sees the rows NA in y
        ("y ~ poly(x, 2) + (1 | g)", ["y"], "text"),  # R's poly() sees the rows NA in y
        ("y ~ x + (x || g)", ["x", "y"], "text"),
        ("y ~ x * f + (1 | g)", ["y", "f", "g"], "int"),
        ("y ~ x + (1 | g)", ["y", "x"], "sparse_int"),
    ]
    for i, (formula, where, style) in enumerate(specs):
        rng = rng_for("missing", i)
        n_levels, size = [(15, 8), (30, 5)][i % 2]
        codes = assign(rng, n_levels, size, "random")
        n = len(codes)
        x = normal(rng, n)
        xp = round_values(np.exp(rng.normal(0, 0.5, n)))
        b_codes = rng.integers(0, 6, n)
        f = np.asarray(["c1", "c2", "c3"], dtype=object)[rng.integers(0, 3, n)]
        z = np.column_stack([np.ones(n), x])
        y = slope_response(rng, 1 + x + np.log(xp) + 0.3 * b_codes, codes, z, [1.0, 0.5], 0.3)
        frame = frame_of(y=round_values(y), x=x, xp=xp, f=f,
                         g=labels(codes, n_levels, style, rng),
                         a=labels(codes, n_levels, style, rng),
                         b=labels(b_codes.astype(np.intp), 6, "text", rng),
                         z=normal(rng, n))
        for column in where:
            if column == "y:group":
                values = frame["y"].astype(object).to_numpy().copy()
                values[codes == 3] = None
                frame["y"] = values
            else:
                put_missing(rng, frame, column, 0.08)
        if "g" in frame and style in ("int", "sparse_int"):
            frame["g"] = frame["g"].astype("Int64")
        keep = [c for c in frame.columns if c in _names_in(formula) or c == "z"]
        note = f"NA in {', '.join(where)}"
        if "poly" in formula or "scale" in formula:
            # R's model.frame evaluates the variables on every row, then drops rows with NA
            note += ("; R evaluates scale()/poly() on every row, before the rows with NA in "
                     "y are dropped, so their centre, scale and basis include those rows")
        yield Case(f"missing_{i:02d}", "missing", formula, "ML" if i % 4 == 2 else "REML",
                   note, frame[keep])


def family_tiny() -> Iterator[Case]:
    """Tiny and unbalanced groups, few levels, and designs lme4 refuses."""
    specs: list[tuple[str, str, Callable[[Rng], IntArray]]] = [
        ("y ~ x + (1 | g)", "40 singleton levels and 10 levels of 10",
         lambda r: np.concatenate([np.arange(40), np.repeat(np.arange(40, 50), 10)])),
        ("y ~ x + (1 | g)", "25 levels of 2", lambda r: np.repeat(np.arange(25), 2)),
        ("y ~ x + (1 | g)", "2 levels", lambda r: np.repeat(np.arange(2), 20)),
        ("y ~ x + (x | g)", "3 levels with slopes", lambda r: np.repeat(np.arange(3), 15)),
        ("y ~ x + (1 | g)", "one level of 300, 20 of 2",
         lambda r: np.concatenate([np.zeros(300, int), np.repeat(np.arange(1, 21), 2)])),
        ("y ~ x + (1 | g)", "30 rows: 6 levels of 5", lambda r: np.repeat(np.arange(6), 5)),
        ("y ~ x + (x | g)", "slopes, some levels with a single row",
         lambda r: np.concatenate([np.arange(10), np.repeat(np.arange(10, 20), 6)])),
        ("y ~ 1 + (1 | g)", "about two rows per level, random",
         lambda r: np.sort(r.integers(0, 30, 60))),
        ("y ~ x + (1 | g)", "geometric sizes", lambda r: assign(r, 40, 3, "unbalanced")),
        ("y ~ x + (x | g)", "geometric sizes, slopes", lambda r: assign(r, 30, 4, "unbalanced")),
        ("y ~ x + (1 | a) + (1 | b)", "sparse crossing: each pair at most once",
         lambda r: np.arange(60)),
        ("y ~ x + (1 | g)", "ERROR expected: every row its own level", lambda r: np.arange(40)),
        ("y ~ x + (x | g)", "ERROR expected: 2 x levels >= rows",
         lambda r: np.concatenate([np.arange(20), np.arange(15)])),
        ("y ~ 1 + (1 | g)", "2 levels of 40, intercept only",
         lambda r: np.repeat(np.arange(2), 40)),
        ("y ~ x + (1 | g)", "one big level and many singletons",
         lambda r: np.concatenate([np.zeros(50, int), np.arange(1, 31)])),
        ("y ~ x + (1 | g) + (1 | h)", "two factors, one with 2 levels",
         lambda r: np.repeat(np.arange(12), 4)),
    ]
    for i, (formula, note, make_codes) in enumerate(specs):
        rng = rng_for("tiny", i)
        codes = np.asarray(make_codes(rng), dtype=np.intp)
        codes = np.unique(codes, return_inverse=True)[1].reshape(-1).astype(np.intp)
        n = len(codes)
        n_levels = int(codes.max()) + 1
        x = normal(rng, n)
        z = np.column_stack([np.ones(n), x])
        y = slope_response(rng, 1 + 0.5 * x, codes, z, [1.0, 0.5], 0.0)
        frame = frame_of(y=round_values(y), x=x,
                         g=labels(codes, n_levels, ["int", "text"][i % 2], rng))
        if "(1 | a)" in formula:
            a = rng.integers(0, 20, n).astype(np.intp)
            b = rng.permutation(n) % 25
            frame["a"] = labels(a, 20, "text", rng)
            frame["b"] = labels(b.astype(np.intp), 25, "int", rng)
            frame["y"] = round_values(frame["y"].to_numpy() + rng.normal(0, 1, 20)[a])
            frame = frame.drop(columns="g")
        if "(1 | h)" in formula:
            frame["h"] = labels((np.arange(n) % 2).astype(np.intp), 2, "text", rng)
        yield Case(f"tiny_{i:02d}", "tiny", formula, "ML" if i % 4 == 3 else "REML", note,
                   frame)


def family_singular() -> Iterator[Case]:
    """Singular fits: true variances of zero, perfect correlations, rank-deficient Σ."""
    specs = [
        ("y ~ x + (1 | g)", [0.0], 0.0, "zero intercept variance"),
        ("y ~ 1 + (1 | g)", [0.0], 0.0, "zero variance, intercept only"),
        ("y ~ x + (x | g)", [1.0, 0.0], 0.0, "zero slope variance"),
        ("y ~ x + (x | g)", [1.0, 0.5], 1.0, "slope perfectly correlated with intercept"),
        ("y ~ x + (x | g)", [1.0, 0.5], -1.0, "perfect negative correlation"),
        ("y ~ x + (x || g)", [1.0, 0.0], 0.0, "uncorrelated, zero slope variance"),
        ("y ~ x + (1 | g) + (1 | h)", [1.0, 0.0], 0.0, "crossed, h has zero variance"),
        ("y ~ x + (1 | g/h)", [1.0, 0.0], 0.0, "nested, inner level has zero variance"),
        ("y ~ x1 + x2 + (x1 + x2 | g)", [1.0, 0.5, 0.5], 1.0, "3 x 3 Σ of rank 1"),
        ("y ~ x + (1 | g)", [0.02], 0.0, "tiny variance (0.02 sigma)"),
        ("y ~ x + (x | g)", [0.0, 0.0], 0.0, "both variances zero"),
        ("y ~ x + (1 | g)", [0.0], 0.0, "zero variance, many small groups"),
        ("y ~ x1 + x2 + (x1 + x2 || g)", [1.0, 0.0, 0.6], 0.0, "uncorrelated, middle zero"),
        ("y ~ x + (1 | g) + (1 | h)", [0.0, 0.0], 0.0, "crossed, both zero"),
        ("y ~ x + (x | g)", [0.0, 0.8], 0.0, "zero intercept variance, slope varies"),
        ("y ~ 1 + (1 | g)", [0.1], 0.0, "between-group variation below chance"),
    ]
    for i, (formula, sds, corr, note) in enumerate(specs):
        rng = rng_for("singular", i)
        n_levels, size = (40, 3) if i == 11 else [(10, 6), (15, 5), (8, 10)][i % 3]
        codes = assign(rng, n_levels, size, "balanced" if i % 2 else "random")
        n = len(codes)
        x1, x2 = normal(rng, n), normal(rng, n)
        x = x1
        h = rng.integers(0, 5, n)
        if "(1 | g/h)" in formula:  # the h-within-g effects are all zero
            y = slope_response(rng, 2 + x, codes, np.ones((n, 1)), [sds[0]], 0.0)
        elif "(1 | h)" in formula:
            z = np.column_stack([np.ones(n)])
            y = slope_response(rng, 2 + x, codes, z, [sds[0]], 0.0)
            y = y + rng.normal(0, 1, 5)[h] * sds[1]
        else:
            z = np.column_stack([np.ones(n), x1, x2])[:, : len(sds)]
            y = slope_response(rng, 2 + x1 - x2, codes, z, sds, corr)
        if i == 15:  # Dyestuff2-like: group means closer together than chance allows
            means = pd.Series(y).groupby(codes).transform("mean").to_numpy()
            y = y - 0.9 * (means - means.mean())
        yield Case(f"singular_{i:02d}", "singular", formula, "ML" if i % 3 == 1 else "REML",
                   note,
                   frame_of(y=round_values(y), x=x, x1=x1, x2=x2,
                            g=labels(codes, n_levels, ["text", "int"][i % 2], rng),
                            h=labels(h.astype(np.intp), 5, "int", rng))[
                       ["y", *sorted(_names_in(formula) & {"x", "x1", "x2", "g", "h"})]])


def family_grouping() -> Iterator[Case]:
    """Grouping columns of every kind: numbers (sparse, negative, fractional), text with
    spaces and mixed case, zero-padded text (read as numbers), logical."""
    styles = ["sparse_int", "negative_int", "float", "text_space", "text_mixed", "padded",
              "bool", "int"]
    for i, style in enumerate(styles):
        rng = rng_for("grouping", i)
        n_levels = 2 if style == "bool" else 16
        codes = assign(rng, n_levels, 25 if style == "bool" else 6, "random")
        n = len(codes)
        x = normal(rng, n)
        z = np.column_stack([np.ones(n), x])
        y = slope_response(rng, 1 + x, codes, z, [1.0, 0.4], 0.0)
        formula = "y ~ x + (x | g)" if i % 2 else "y ~ x + (1 | g)"
        yield Case(f"grouping_{i:02d}", "grouping", formula, "ML" if i % 3 == 2 else "REML",
                   f"grouping column style {style}",
                   frame_of(y=round_values(y), x=x, g=labels(codes, n_levels, style, rng)))


def family_large_mean() -> Iterator[Case]:
    """Columns with a large mean and a small SD (x * 1e-4 + 1e3, y + 1e6)."""
    specs = [
        ("y ~ x + (1 | g)", "x", "x = z * 1e-4 + 1e3"),
        ("y ~ x + (1 | g)", "y", "y + 1e6"),
        ("y ~ x + (1 | g)", "xy", "both"),
        ("y ~ x + (x | g)", "x", "random slope on x = z * 1e-4 + 1e3"),
        ("y ~ x + (x || g)", "x", "uncorrelated slope on the shifted x"),
        ("y ~ x + (x | g)", "x_mild", "x = z * 0.01 + 100"),
        ("y ~ scale(x) + (1 | g)", "x", "scale() of the shifted x"),
        ("y ~ I(x - 1000) + (1 | g)", "x", "I(x - 1000) recentres"),
        ("y ~ x + (1 | g)", "y_small", "y * 1e-3 + 1e4"),
        ("y ~ x + (1 | a) + (1 | b)", "y", "crossed, y + 1e6"),
    ]
    for i, (formula, how, note) in enumerate(specs):
        rng = rng_for("large_mean", i)
        n_levels = [12, 20][i % 2]
        codes = assign(rng, n_levels, 8, "random")
        n = len(codes)
        zx = normal(rng, n)
        zz = np.column_stack([np.ones(n), zx])
        y = slope_response(rng, 3 + 2 * zx, codes, zz, [1.0, 0.5], 0.2)
        b = rng.integers(0, 6, n)
        y = round_values(y + rng.normal(0, 0.7, 6)[b])
        x = zx
        if how in ("x", "xy"):
            x = zx * 1e-4 + 1e3
        if how == "x_mild":
            x = zx * 0.01 + 100
        if how in ("y", "xy"):
            y = y + 1e6
        if how == "y_small":
            y = y * 1e-3 + 1e4
        frame = frame_of(y=y, x=x, g=labels(codes, n_levels, "text", rng))
        if "(1 | a)" in formula:
            frame = frame_of(y=y, x=x, a=labels(codes, n_levels, "text", rng),
                             b=labels(b.astype(np.intp), 6, "int", rng))
        yield Case(f"large_mean_{i:02d}", "large_mean", formula,
                   "ML" if i % 3 == 1 else "REML", note, frame)


def family_badly_scaled() -> Iterator[Case]:
    """Badly scaled columns (x 1e6, x 1e-6, y 1e6, y 1e-6, and mixtures)."""
    specs: list[tuple[str, float, float, float, str]] = [
        ("y ~ x + (1 | g)", 1e6, 1.0, 1.0, "x * 1e6"),
        ("y ~ x + (1 | g)", 1e-6, 1.0, 1.0, "x * 1e-6"),
        ("y ~ x + (1 | g)", 1.0, 1.0, 1e6, "y * 1e6"),
        ("y ~ x + (1 | g)", 1.0, 1.0, 1e-6, "y * 1e-6"),
        ("y ~ x + (x | g)", 1e3, 1.0, 1.0, "random slope on x * 1e3"),
        ("y ~ x + x2 + (1 | g)", 1e6, 1e-6, 1.0, "x * 1e6 and x2 * 1e-6"),
        ("y ~ x + (x | g)", 1.0, 1.0, 1e-6, "y * 1e-6 with a slope"),
        ("y ~ x + (x | g)", 1e-6, 1.0, 1.0, "random slope on x * 1e-6"),
        ("y ~ x + (1 | a) + (1 | b)", 1.0, 1.0, 1e6, "crossed, y * 1e6"),
        ("y ~ x + (x || g)", 1e6, 1.0, 1e-3, "x * 1e6, y * 1e-3, uncorrelated slope"),
    ]
    for i, (formula, sx, sx2, sy, note) in enumerate(specs):
        rng = rng_for("badly_scaled", i)
        n_levels = [15, 25][i % 2]
        codes = assign(rng, n_levels, 8, "random")
        n = len(codes)
        zx, zx2 = normal(rng, n), normal(rng, n)
        zz = np.column_stack([np.ones(n), zx])
        b = rng.integers(0, 6, n)
        y = slope_response(rng, 1 + zx + 0.5 * zx2, codes, zz, [1.0, 0.5], 0.0)
        y = round_values(y + rng.normal(0, 0.6, 6)[b]) * sy
        frame = frame_of(y=y, x=zx * sx, x2=zx2 * sx2, g=labels(codes, n_levels, "int", rng),
                         a=labels(codes, n_levels, "int", rng),
                         b=labels(b.astype(np.intp), 6, "text", rng))
        keep = [c for c in frame.columns if c in _names_in(formula)]
        yield Case(f"badly_scaled_{i:02d}", "badly_scaled", formula,
                   "ML" if i % 3 == 2 else "REML", note, frame[keep])


def family_large() -> Iterator[Case]:
    """A handful of large designs (2,000 to 20,000 rows)."""
    specs = [
        ("y ~ x + (x | g)", 2000, 100, 0, "2,000 rows, 100 levels, slopes"),
        ("y ~ x + (1 | g) + (1 | h)", 5000, 200, 50, "5,000 rows, 200 x 50 crossed"),
        ("y ~ x + f + (1 | g) + (1 | h)", 10000, 400, 30, "10,000 rows, factor, crossed"),
        ("y ~ x + (x | g) + (1 | h)", 20000, 1000, 40, "20,000 rows, 1,000 levels, slopes"),
        ("y ~ x + (1 | g/h)", 12000, 300, 4, "12,000 rows, nested 300 / 4"),
    ]
    for i, (formula, n, lg, lh, note) in enumerate(specs):
        rng = rng_for("large", i)
        g = rng.integers(0, lg, n).astype(np.intp)
        g[:lg] = np.arange(lg)
        h = rng.integers(0, max(lh, 1), n).astype(np.intp)
        x = normal(rng, n)
        f = np.asarray(["a", "b", "c", "d"], dtype=object)[rng.integers(0, 4, n)]
        eg = effects(rng, lg, [1.0, 0.3], 0.2)
        eh = rng.normal(0, 0.5, max(lh, 1) * lg)
        inner = eh[g * max(lh, 1) + h] if "g/h" in formula else eh[h]
        y = 1 + 0.4 * x + eg[g, 0] + x * eg[g, 1] + inner + rng.normal(0, 1, n)
        frame = frame_of(y=round_values(y), x=x, f=f, g=labels(g, lg, "int", rng),
                         h=labels(h, max(lh, 1), "text", rng))
        keep = [c for c in frame.columns if c in _names_in(formula)]
        yield Case(f"large_{i:02d}", "large", formula, "ML" if i % 2 else "REML", note,
                   frame[keep])


FAMILIES: list[Callable[[], Iterator[Case]]] = [
    family_ri, family_slopes, family_uncorr, family_crossed, family_nested,
    family_interaction, family_factors, family_transforms, family_missing, family_tiny,
    family_singular, family_grouping, family_large_mean, family_badly_scaled, family_large,
]


# ----------------------------------------------------------------------------------------
# the test models of lme4, MixedModels.jl and nlme, on data that R ships

LME4_TESTS = "lme4 tests (github.com/lme4/lme4, tests/)"
PLS_JL = "MixedModels.jl test/pls.jl (github.com/JuliaStats/MixedModels.jl)"
NLME = "nlme data (Pinheiro and Bates 2000)"


def _r(case_id: str, formula: str, method: str, dataset: str, columns: Sequence[str],
       source: str, notes: str, published: list[dict[str, Any]] | None = None) -> Case:
    name = dataset.split("::")[1].lower()
    return Case(case_id, "r_data", formula, method, notes, source=source,
                data=f"data/r_{name}.csv.gz", r_dataset=dataset, columns=columns,
                published=published or [])


SLEEP = ("Reaction", "Days", "Subject")
DYES = ("Yield", "Batch")
INSTEVAL = ("y", "s", "d", "dept", "service")

# Values MixedModels.jl's test/pls.jl asserts, with the tolerance it states (atol unless
# rtol is given). θ and standard deviations are in MixedModels.jl's term order, which for
# these models is lme4's (terms by decreasing number of levels). "objective" is -2 log L.
PLS_DYESTUFF_ML: dict[str, Any] = {
    "source": PLS_JL, "testset": "Dyestuff",
    "objective": 327.32705988112673, "objective_atol": 0.001,
    "theta": [0.7525806540074477], "theta_atol": 1e-5,
    "fixef": [1527.5], "stderror": [17.694552929494222], "stderror_atol": 0.0001,
    "sigma": 49.51010035223816, "sigma_atol": 1e-5,
    "sd": [37.260343703061764], "sd_atol": 0.0001,
}
PLS_DYESTUFF_REML: dict[str, Any] = {
    "source": PLS_JL, "testset": "Dyestuff (refit!(fm1; REML=true))",
    "objective": 319.6542768422576, "objective_atol": 0.0001,
    "vcov": [[375.7167103872769]], "vcov_rtol": 1e-3,
}
LME4_DYESTUFF_REML: dict[str, Any] = {
    "source": "lme4 tests/testthat/test-lmer.R", "testset": "lmer (fm1, Dyestuff)",
    "fixef": [1527.5], "variance": [1764.0375195], "variance_rtol": 1e-5,
    "reml_criterion": 319.654276842342, "deviance_ml_refit": 327.327059881135,
    "sigma": 49.5101272946856, "sigma_rtol": 1e-6,
    "vcov": [[375.714676744]], "vcov_rtol": 1e-5,
    "theta": [0.84832031], "theta_rtol": 6e-6,
}
PLS_DYESTUFF2_ML: dict[str, Any] = {
    "source": PLS_JL, "testset": "Dyestuff2",
    "objective": 162.87303665382575, "theta": [0.0], "sigma": 3.6532313513746537,
    "stderror": [0.6669857396443264], "fixef": [5.6656], "singular": True,
}
LME4_DYESTUFF2_REML: dict[str, Any] = {
    "source": "lme4 tests/testthat/test-lmer.R", "testset": "lmer (refit(fm1, Dyestuff2$Yield))",
    "fixef": [5.6656], "theta": [0.0], "variance": [0.0],
}
PLS_PENICILLIN_ML: dict[str, Any] = {
    "source": PLS_JL, "testset": "penicillin",
    "objective": 332.1883486700085, "objective_atol": 0.001,
    "fixef": [22.97222222222222], "fixef_atol": 0.001,
    "stderror": [0.7446037806555799], "stderror_atol": 0.0001,
    "theta": [1.5375939045981573, 3.219792193110907], "theta_atol": 0.001,
    "sd": [0.845571948075415, 1.770666460750787], "sd_atol": 0.0001,
    "sigma": 0.549931906953287, "sigma_atol": 0.0001,
}
PLS_PASTES_ML: dict[str, Any] = {
    "source": PLS_JL, "testset": "pastes (last model)",
    "objective": 247.9944658624955, "objective_atol": 0.001,
    "fixef": [60.0533333333333], "fixef_atol": 0.001,
    "stderror": [0.6421355774401101], "stderror_atol": 0.0001,
    "theta": [3.5269029347766856, 1.3299137410046242], "theta_atol": 0.001,
    "sd": [2.90407793598792, 1.0950608007768226], "sd_atol": 0.001,
    "sigma": 0.8234073887751603, "sigma_atol": 0.0001,
}
PLS_PASTES_LRT: dict[str, Any] = {
    "source": PLS_JL, "testset": "pastes (likelihoodratiotest of the two models)",
    "lrt_against": "mm_pastes_ml_nested", "lrt_p_value": 0.5233767965780878,
    "lrt_p_value_atol": 0.0001,
}
PLS_SLEEP_CORR_ML: dict[str, Any] = {
    "source": PLS_JL, "testset": "sleep (last model)",
    "objective": 1751.9393444636682,
    "theta": [0.9292297167514472, 0.01816466496782548, 0.22264601131030412],
    "theta_atol": 5e-5,
    "stderror": [6.632295312722272, 1.5022387911441102], "stderror_atol": 0.0001,
    "fixef": [251.40510484848454, 10.467285959596126], "fixef_atol": 1e-5,
    "sd": [23.78066438213187, 5.7168446983832775], "sd_atol": 0.01,
    "loglik": -875.9696722318341, "loglik_atol": 1e-5,
    "fixef_correlation": -0.13755599049585931, "fixef_correlation_atol": 0.0001,
    "condsd_first_level": [11.872975724781853, 2.271077894634534], "condsd_atol": 1e-4,
    "ranef_first": 2.8156104060324334, "ranef_first_atol": 0.001,
}
PLS_SLEEP_ZEROCORR_ML: dict[str, Any] = {
    "source": PLS_JL, "testset": "sleep (fmnc, zerocorr and fm_ind)",
    "objective": 1752.003255140962, "objective_atol": 0.001,
    "fixef": [251.4051048484854, 10.467285959595674],
    "stderror": [6.707646513654387, 1.5193112497954953], "stderror_atol": 0.001,
    "theta": [0.9458043022417869, 0.22692740996014607], "theta_atol": 0.0001,
    "sd": [24.171269957611873, 5.79939919963132], "sd_atol": 0.0005,
    "sigma": 25.55613836753517, "sigma_atol": 0.0001,
}
PLS_SLEEP_SLOPE_ML: dict[str, Any] = {
    "source": PLS_JL, "testset": "sleep (fmrs)",
    "objective": 1774.080315280526, "objective_rtol": 1e-5,
    "theta": [0.24353985601485326], "theta_rtol": 1e-5,
}
PLS_INSTEVAL_2: dict[str, Any] = {
    "source": PLS_JL, "testset": "InstEval (models(:insteval)[2])",
    "objective": 237721.76877450474, "objective_atol": 0.001,
    "fitted_first": 3.1787619026604945, "fitted_first_atol": 0.0001,
    "residual_first": 1.8212380973395055, "residual_first_atol": 1e-5,
}
PLS_INSTEVAL_1: dict[str, Any] = {
    "source": PLS_JL, "testset": "InstEval (first(models(:insteval)))",
    "objective": 237585.5534151695, "objective_atol": 0.001,
}
PLS_OXIDE_ML: dict[str, Any] = {
    "source": PLS_JL, "testset": "oxide (first model)",
    "theta": [1.6892072390381156, 2.98500065754288], "theta_atol": 1e-3,
}


def r_cases() -> list[Case]:
    """Linear models from lme4's and MixedModels.jl's tests and nlme's classic examples."""
    return [
        # lme4's tests (REML unless the test says REML = FALSE)
        _r("lme4_dyestuff_reml", "Yield ~ 1 + (1 | Batch)", "REML", "lme4::Dyestuff", DYES,
           LME4_TESTS + " testthat/test-lmer.R", "fm1",
           [LME4_DYESTUFF_REML, PLS_DYESTUFF_REML]),
        _r("lme4_dyestuff2_reml", "Yield ~ 1 + (1 | Batch)", "REML", "lme4::Dyestuff2", DYES,
           LME4_TESTS + " lmer-1.R, testthat/test-lmer.R", "fm3: singular",
           [LME4_DYESTUFF2_REML]),
        _r("lme4_sleepstudy_reml", "Reaction ~ Days + (Days | Subject)", "REML",
           "lme4::sleepstudy", SLEEP, LME4_TESTS + " lmer-1.R", "fm1"),
        _r("lme4_sleepstudy_ml", "Reaction ~ Days + (Days | Subject)", "ML",
           "lme4::sleepstudy", SLEEP, LME4_TESTS + " lmer-1.R; " + PLS_JL,
           "fm1a; MixedModels.jl's models(:sleepstudy)[4]", [PLS_SLEEP_CORR_ML]),
        _r("lme4_sleepstudy_split", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
           "REML", "lme4::sleepstudy", SLEEP, LME4_TESTS + " lmer-1.R", "fm2"),
        _r("lme4_sleepstudy_uncorr", "Reaction ~ Days + (Days || Subject)", "REML",
           "lme4::sleepstudy", SLEEP, LME4_TESTS + " testthat/test-lmer.R", "|| notation"),
        _r("lme4_sleepstudy_log", "log(Reaction) ~ log(Days + 1) + (log(Days + 1) | Subject)",
           "ML", "lme4::sleepstudy", SLEEP, LME4_TESTS + " lmer-1.R", "fm2l"),
        _r("lme4_sleepstudy_days_group", "Reaction ~ 1 + (1 | Days)", "REML",
           "lme4::sleepstudy", SLEEP, LME4_TESTS + " testthat/test-lmer.R",
           "a numeric column as the grouping factor"),
        _r("lme4_sleepstudy_poly_re", "Reaction ~ Days + (poly(Days, 2) | Subject)", "REML",
           "lme4::sleepstudy", SLEEP, LME4_TESTS + " testthat/test-methods.R", "fm5"),
        _r("lme4_sleepstudy_poly_fe", "Reaction ~ poly(Days, 2) + (1 | Subject)", "REML",
           "lme4::sleepstudy", SLEEP, LME4_TESTS + " testthat/test-methods.R", "fm6"),
        _r("lme4_sleepstudy_ri", "Reaction ~ Days + (1 | Subject)", "REML",
           "lme4::sleepstudy", SLEEP, LME4_TESTS + " testthat/test-predict.R", "fm1"),
        _r("lme4_penicillin", "diameter ~ (1 | plate) + (1 | sample)", "REML",
           "lme4::Penicillin", ("diameter", "plate", "sample"),
           LME4_TESTS + " testthat/test-predict.R", "fm3: crossed"),
        _r("lme4_pastes_nested", "strength ~ (1 | batch/cask)", "REML", "lme4::Pastes",
           ("strength", "batch", "cask"), LME4_TESTS + " testthat/test-methods.R", "fm3"),
        _r("lme4_cake_temp", "angle ~ temp + recipe + (1 | replicate)", "REML", "lme4::cake",
           ("replicate", "recipe", "temperature", "angle", "temp"),
           LME4_TESTS + " testthat/test-predict.R",
           "fm4; replicate read as numbers from the CSV"),
        _r("lme4_cake_interaction",
           "angle ~ recipe * factor(temperature) + (1 | recipe:replicate)",
           "REML", "lme4::cake", ("replicate", "recipe", "temperature", "angle", "temp"),
           LME4_TESTS + " testthat/test-NAhandling.R",
           "temperature is an ordered factor in R; the CSV holds its labels (175, ...), "
           "read as numbers, so factor(temperature): treatment contrasts on both sides"),
        _r("lme4_pixel", "pixel ~ day + I(day^2) + (day | Dog) + (1 | Side/Dog)", "REML",
           "nlme::Pixel", ("Dog", "Side", "day", "pixel"),
           LME4_TESTS + " testthat/test-methods.R", "fmPix"),
        _r("lme4_orthodont_centred", "distance ~ I(age - 11) + (I(age - 11) | Subject)", "REML",
           "nlme::Orthodont", ("distance", "age", "Subject", "Sex"),
           LME4_TESTS + " testthat/test-methods.R", "fmOrth"),
        _r("lme4_orthodont_sex_re", "distance ~ age + (age | Subject) + (0 + Sex | Subject)",
           "REML", "nlme::Orthodont", ("distance", "age", "Subject", "Sex"),
           LME4_TESTS + " testthat/test-methods.R",
           "m3: a factor in a second term for the same grouping factor"),
        _r("lme4_iris", "Petal.Width ~ Sepal.Length + (1 | Species)", "REML", "datasets::iris",
           ("Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width", "Species"),
           LME4_TESTS + " testthat/test-predict.R", "mod1: 3 levels"),
        # MixedModels.jl's test/pls.jl (fitted by ML, MixedModels.jl's default)
        _r("mm_dyestuff_ml", "Yield ~ 1 + (1 | Batch)", "ML", "lme4::Dyestuff", DYES, PLS_JL,
           "models(:dyestuff)", [PLS_DYESTUFF_ML]),
        _r("mm_dyestuff2_ml", "Yield ~ 1 + (1 | Batch)", "ML", "lme4::Dyestuff2", DYES, PLS_JL,
           "models(:dyestuff2): singular", [PLS_DYESTUFF2_ML]),
        _r("mm_penicillin_ml", "diameter ~ 1 + (1 | plate) + (1 | sample)", "ML",
           "lme4::Penicillin", ("diameter", "plate", "sample"), PLS_JL, "models(:penicillin)",
           [PLS_PENICILLIN_ML]),
        _r("mm_pastes_ml_nested", "strength ~ 1 + (1 | batch/cask)", "ML", "lme4::Pastes",
           ("strength", "batch", "cask"), PLS_JL, "models(:pastes)[2]", [PLS_PASTES_ML]),
        _r("mm_pastes_ml_batchcask", "strength ~ 1 + (1 | batch:cask)", "ML", "lme4::Pastes",
           ("strength", "batch", "cask"), PLS_JL, "models(:pastes)[1]: batch & cask",
           [PLS_PASTES_LRT]),
        _r("mm_sleepstudy_ml_ri", "Reaction ~ 1 + Days + (1 | Subject)", "ML",
           "lme4::sleepstudy", SLEEP, PLS_JL, "models(:sleepstudy)[1]"),
        _r("mm_sleepstudy_ml_zerocorr", "Reaction ~ 1 + Days + (1 + Days || Subject)", "ML",
           "lme4::sleepstudy", SLEEP, PLS_JL, "models(:sleepstudy)[2]: zerocorr",
           [PLS_SLEEP_ZEROCORR_ML]),
        _r("mm_sleepstudy_ml_split", "Reaction ~ 1 + Days + (1 | Subject) + (0 + Days | Subject)",
           "ML", "lme4::sleepstudy", SLEEP, PLS_JL, "models(:sleepstudy)[3] (fm_ind)",
           [PLS_SLEEP_ZEROCORR_ML]),
        _r("mm_sleepstudy_ml_slope", "Reaction ~ 1 + Days + (0 + Days | Subject)", "ML",
           "lme4::sleepstudy", SLEEP, PLS_JL, "fmrs", [PLS_SLEEP_SLOPE_ML]),
        _r("mm_sleepstudy_cat_error",
           "Reaction ~ 1 + factor(Days) + (1 | Subject) + (0 + factor(Days) | Subject)", "ML",
           "lme4::sleepstudy", SLEEP, PLS_JL,
           "fm_cat with days as text: 198 random effects for 180 rows, which lme4 refuses "
           "(MixedModels.jl fits it)"),
        _r("mm_oxide_ml", "Thickness ~ 1 + (1 | Lot/Wafer)", "ML", "nlme::Oxide",
           ("Source", "Lot", "Wafer", "Site", "Thickness"), PLS_JL, "models(:oxide)[1]",
           [PLS_OXIDE_ML]),
        _r("mm_insteval_dept", "y ~ 1 + factor(service) + (1 | s) + (1 | d) + (1 | dept)", "ML",
           "lme4::InstEval", INSTEVAL, PLS_JL,
           "models(:insteval)[2]; service is 0/1 (numeric in the CSV)", [PLS_INSTEVAL_2]),
        _r("mm_insteval_service_dept", "y ~ 1 + factor(service) * factor(dept) + (1 | s) + (1 | d)",
           "ML", "lme4::InstEval", INSTEVAL, PLS_JL, "models(:insteval)[1]", [PLS_INSTEVAL_1]),
        _r("mm_insteval_zerocorr",
           "y ~ 1 + factor(service) + (1 | s) + (1 | d) + (1 + service || dept)", "ML",
           "lme4::InstEval", INSTEVAL, PLS_JL,
           "models(:insteval)[3]: zerocorr(1 + service | dept), service numeric 0/1"),
        # nlme's classic examples
        _r("nlme_oats", "yield ~ nitro * Variety + (1 | Block/Variety)", "REML", "nlme::Oats",
           ("Block", "Variety", "nitro", "yield"), NLME,
           "split plot; the column 'yield' is a Python keyword"),
        _r("nlme_ovary", "follicles ~ sin(2*pi*Time) + cos(2*pi*Time) + (1 | Mare)", "REML",
           "nlme::Ovary", ("Mare", "Time", "follicles"), NLME,
           "sin, cos and pi in the formula; Mare read as numbers"),
        _r("nlme_orthodont", "distance ~ age + Sex + (age | Subject)", "REML",
           "nlme::Orthodont", ("distance", "age", "Subject", "Sex"), NLME, "growth curves"),
        _r("nlme_machines", "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", "REML",
           "nlme::Machines", ("Worker", "Machine", "score"), NLME, "Worker read as numbers"),
        _r("nlme_machines_slopes", "score ~ Machine + (0 + Machine | Worker)", "REML",
           "nlme::Machines", ("Worker", "Machine", "score"), NLME, "3 x 3 Σ for 6 workers"),
        _r("nlme_ergostool", "effort ~ Type + (1 | Subject)", "REML", "nlme::ergoStool",
           ("effort", "Type", "Subject"), NLME, "Subject read as numbers"),
        _r("nlme_rail", "travel ~ 1 + (1 | Rail)", "REML", "nlme::Rail", ("Rail", "travel"),
           NLME, "Rail read as numbers"),
        _r("nlme_oxide_reml", "Thickness ~ 1 + (1 | Lot/Wafer)", "REML", "nlme::Oxide",
           ("Source", "Lot", "Wafer", "Site", "Thickness"), NLME, "nested, REML"),
        _r("nlme_bodyweight", "weight ~ Time * factor(Diet) + (Time | Rat)", "REML",
           "nlme::BodyWeight", ("weight", "Time", "Rat", "Diet"), NLME,
           "Rat and Diet read as numbers from the CSV, so factor(Diet)"),
        _r("mlmrev_exam", "normexam ~ standLRT + (standLRT | school)", "REML", "mlmRev::Exam",
           ("school", "normexam", "standLRT"), "mlmRev data (lme4's authors)",
           "4,059 pupils in 65 schools"),
    ]


# ----------------------------------------------------------------------------------------


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """One gzipped CSV with NA for missing values, byte-identical on every run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = frame.to_csv(index=False, na_rep="NA", lineterminator="\n")
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                filename="", compresslevel=9) as out:
        out.write(text.encode("utf-8"))


def all_cases() -> list[Case]:
    cases = [case for family in FAMILIES for case in family()]
    return cases + r_cases()


def main() -> None:
    cases = all_cases()
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    DATA.mkdir(parents=True, exist_ok=True)
    for case in cases:
        if case.frame is not None:
            case.data = f"data/{case.id}.csv.gz"
            write_csv(case.frame, HERE / case.data)
    stale = {p.name for p in DATA.glob("*.csv.gz") if not p.name.startswith("r_")}
    stale -= {Path(c.data).name for c in cases}
    for name in sorted(stale):
        (DATA / name).unlink()
    manifest = {"version": 1, "cases": [c.manifest() for c in cases]}
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")
    generated = sum(c.frame is not None for c in cases)
    print(f"{len(cases)} cases ({generated} generated, {len(cases) - generated} on R's data)")


if __name__ == "__main__":
    main()
