"""A model fitted through ``fit_model`` against one lme4 reference file, to issue 4's
tolerances (stated in test_lmm_reference.py): fixed effects within 1% of their SE, SEs,
SDs and σ within 0.5%, the REML criterion within 4e-4."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from service.stats.fit import fit_model
from service.stats.formula import parse_formula
from service.stats.results import FitResult

DATA = Path(__file__).resolve().parents[1] / "data"


def fit_and_check(name: str) -> tuple[FitResult, dict[str, Any]]:
    """Fit tests/data/expected/<name>.json's model and check it against lme4's numbers."""
    ref: dict[str, Any] = json.loads((DATA / "expected" / f"{name}.json").read_text())
    formula = parse_formula(ref["formula"])
    assert [t.label for t in formula.fixed] == ref["term_labels"]
    result = fit_model(ref["formula"], pd.read_csv(DATA / ref["dataset"]), ref["method"]).result
    assert [fe.term for fe in result.fixed_effects] == list(ref["fixef"])
    for fe in result.fixed_effects:
        se = ref["fixef_se"][fe.term]
        assert fe.estimate == pytest.approx(ref["fixef"][fe.term], abs=0.01 * se)
        assert fe.std_error == pytest.approx(se, rel=5e-3)
    sds = {term.group: term.std_dev[0] for term in result.random_effects}
    want = {row["group"]: row["sdcor"] for row in ref["varcorr"] if row["group"] != "Residual"}
    assert sds == pytest.approx(want, rel=5e-3)
    assert result.residual_std_dev == pytest.approx(ref["sigma"], rel=5e-3)
    assert result.metrics.reml_criterion == pytest.approx(ref["reml_criterion"], abs=4e-4)
    assert result.metrics.n_obs == ref["n_obs"]
    return result, ref
