"""Rows for tests: datasets from data frames, models with queued jobs, results from R."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from service.datasets.repository import add_dataset
from service.db.models import DatasetRow, ModelRow, utcnow
from service.jobs.repository import enqueue
from service.models.repository import add_model
from service.stats.results import (
    Convergence,
    FitResult,
    FixedEffect,
    Metrics,
    RandomEffectsTerm,
)

DATA = Path(__file__).resolve().parents[1] / "data"


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def dataset_row(frame: pd.DataFrame, name: str = "data") -> DatasetRow:
    content = parquet_bytes(frame)
    columns = [
        {"name": str(c), "dtype": str(frame[c].dtype), "n_missing": int(frame[c].isna().sum())}
        for c in frame.columns
    ]
    return DatasetRow(id=str(uuid.uuid4()), name=name, n_rows=len(frame), columns=columns,
                      sha256=hashlib.sha256(content).hexdigest(), size_bytes=len(content),
                      content=content, created_at=utcnow())


def model_row(dataset_id: str, formula: str, method: str = "REML", kind: str = "lmm") -> ModelRow:
    return ModelRow(id=str(uuid.uuid4()), name=None, dataset_id=dataset_id, formula=formula,
                    method=method, kind=kind, status="queued", created_at=utcnow())


def submit_fit(session_factory: sessionmaker[Session], frame: pd.DataFrame, formula: str,
               *, method: str = "REML", max_attempts: int = 3) -> tuple[str, str]:
    """Store ``frame`` and a model on it with a queued fit job: (model id, job id)."""
    with session_factory.begin() as session:
        dataset = add_dataset(session, dataset_row(frame))
        kind = "lmm" if "|" in formula else "lm"
        model = add_model(session, model_row(dataset.id, formula, method, kind))
        job = enqueue(session, "fit", model.id, max_attempts)
        return model.id, job.id


def expected(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / "expected" / f"{name}.json").read_text())
    return loaded


def result_from_r(name: str) -> FitResult:
    """A FitResult holding R's numbers from tests/data/expected/NAME.json (lmer fits)."""
    r = expected(name)
    fixed = tuple(
        FixedEffect(term=term, estimate=value, std_error=r["fixef_se"][term],
                    statistic=r["t_value"][term], df=r["satterthwaite_df"][term],
                    p_value=r["p_value_satterthwaite"][term], conf_low=float("nan"),
                    conf_high=float("nan"))
        for term, value in r["fixef"].items())
    return FitResult(
        kind="lmm", method=r["method"], fixed_effects=fixed,
        metrics=Metrics(n_obs=r["n_obs"], loglik=r["loglik"], aic=r["aic"], bic=r["bic"],
                        deviance=r["deviance_ml"], sigma=r["sigma"], rmse=r["rmse"],
                        df_residual=float("nan"), reml_criterion=r["reml_criterion"]),
        convergence=Convergence(converged=True, singular=r["singular"], optimizer="R",
                                iterations=0),
        residual_std_dev=r["sigma"], random_effects=random_effects_from_varcorr(r),
        # R's JSON writes a one-element vector as a scalar
        theta=tuple(r["theta"]) if isinstance(r["theta"], list) else (r["theta"],))


def random_effects_from_varcorr(r: dict[str, Any]) -> tuple[RandomEffectsTerm, ...]:
    """Rebuild per-term variance components from R's as.data.frame(VarCorr) rows."""
    blocks: list[tuple[str, list[dict[str, Any]]]] = []
    for row in r["varcorr"]:
        if row["group"] == "Residual":
            continue
        if not blocks or blocks[-1][0] != row["group"]:
            blocks.append((row["group"], []))
        blocks[-1][1].append(row)
    terms = []
    for group, rows in blocks:
        names = [row["var1"] for row in rows if row["var2"] is None]
        corr = [[1.0 if i == j else 0.0 for j in range(len(names))] for i in range(len(names))]
        for row in rows:
            if row["var2"] is not None:
                i, j = names.index(row["var1"]), names.index(row["var2"])
                corr[i][j] = corr[j][i] = row["sdcor"]
        variances = [row for row in rows if row["var2"] is None]
        # R suffixes repeated group names ("Subject.1"); the engine reports the plain name
        base = group.rsplit(".", 1)[0] if group[-1].isdigit() and "." in group else group
        terms.append(RandomEffectsTerm(
            group=base, terms=tuple(names), std_dev=tuple(v["sdcor"] for v in variances),
            variance=tuple(v["vcov"] for v in variances),
            correlation=tuple(tuple(c) for c in corr), n_levels=r["n_groups"].get(base, 0)))
    return tuple(terms)
