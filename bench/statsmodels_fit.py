"""Fit one benchmark dataset with statsmodels' MixedLM and print the fit as JSON.

Usage: ``python bench/statsmodels_fit.py <dataset> <REML|ML>``. ``run.py`` runs it in a
subprocess with a timeout, because MixedLM can take far longer than the others.

The model is given to MixedLM as arrays rather than a formula, so its formula machinery
is not charged to it; the timing covers building the model object and ``fit()``.
Crossed factors can only be variance components of one all-embracing group in MixedLM;
their indicator matrices are passed sparse (a dense 100,000 × 4,020 matrix would take
3 GB), which is the fastest form MixedLM accepts.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np
import pandas as pd
import statsmodels
from scipy import sparse
from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec

from simulate import DATASETS


def build_slopes(df: pd.DataFrame, response: str, x: str, group: str) -> MixedLM:
    exog = np.column_stack([np.ones(len(df)), df[x].to_numpy(float)])
    return MixedLM(df[response].to_numpy(float), exog, groups=df[group].to_numpy(),
                   exog_re=exog.copy())


def build_crossed(df: pd.DataFrame, response: str, x: str, factors: list[str]) -> MixedLM:
    n = len(df)
    exog = np.column_stack([np.ones(n), df[x].to_numpy(float)])
    names, colnames, mats = [], [], []
    for f in factors:
        codes, levels = pd.factorize(df[f], sort=True)
        indicator = sparse.csr_array(
            (np.ones(n), (np.arange(n), codes)), shape=(n, len(levels))
        )
        names.append(f)
        colnames.append([[str(v) for v in levels]])
        mats.append([indicator])
    return MixedLM(df[response].to_numpy(float), exog, groups=np.zeros(n),
                   exog_vc=VCSpec(names, colnames, mats))


def fit(name: str, method: str) -> dict[str, object]:
    dataset = DATASETS[name]
    df = dataset.load()
    response, x = dataset.response, dataset.covariate
    start, start_cpu = time.perf_counter(), time.process_time()
    if name == "crossed100k":
        model = build_crossed(df, response, x, list(dataset.groups))
    else:
        model = build_slopes(df, response, x, dataset.groups[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.fit(reml=(method == "REML"))
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - start_cpu
    return {
        "engine": "statsmodels",
        "version": statsmodels.__version__,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "loglik": float(result.llf),
        "fixef": dict(zip(["(Intercept)", x], map(float, result.fe_params), strict=True)),
        "converged": bool(result.converged),
        "messages": sorted({str(w.message) for w in caught}),
    }


if __name__ == "__main__":
    print(json.dumps(fit(sys.argv[1], sys.argv[2])))
