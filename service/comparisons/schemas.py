"""Request and response bodies of the comparisons API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.db.models import ComparisonRow
from service.errors import Problem

Status = Literal["queued", "running", "succeeded", "failed"]
Number = float | None


class ComparisonCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_ids: list[str] = Field(
        min_length=2, max_length=20,
        description="Two or more models fitted to the same dataset, with nested fixed effects")


class ComparisonTableRow(BaseModel):
    """One model's line of R's ``anova`` table; the test is against the line before."""

    model_config = ConfigDict(protected_namespaces=())

    model_id: str
    refit_model_id: str | None = Field(
        description="The ML refit whose likelihood this row uses (a REML mixed model), or null")
    formula: str
    npar: int
    loglik: Number
    aic: Number
    bic: Number
    deviance: Number = Field(description="-2 log-likelihood (ML)")
    rmse: Number = Field(description="Root mean squared residual of the model itself")
    chisq: Number
    df: int | None
    p_value: Number


class ComparisonResult(BaseModel):
    rows: list[ComparisonTableRow] = Field(description="Ordered by npar, as R's anova")


class Comparison(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    id: str
    model_ids: list[str]
    refits: dict[str, str] = Field(
        description="REML mixed model id -> id of its ML refit (queued like any fit)")
    status: Status
    created_at: datetime
    finished_at: datetime | None
    error: Problem | None = Field(description="Why the comparison failed, or null")
    result: ComparisonResult | None = Field(description="The table, once every fit is done")

    @classmethod
    def from_row(cls, row: ComparisonRow, status: str | None = None) -> Comparison:
        return cls(
            id=row.id, model_ids=list(row.model_ids), refits=dict(row.refits),
            status=status or row.status,  # type: ignore[arg-type]
            created_at=row.created_at, finished_at=row.finished_at,
            error=Problem.model_validate(row.error) if row.error else None,
            result=ComparisonResult.model_validate(row.result) if row.result else None,
        )
