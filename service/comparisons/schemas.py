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
        description="Two or more models fitted to the same dataset, with nested fixed "
                    "effects: ids, or name@version and name@alias")


class ComparisonTableRow(BaseModel):
    """One model's line of R's ``anova`` table; the test is against the line before.

    An F test (``test`` "F") fills ``res_df``, ``rss``, ``df``, ``sum_of_sq``,
    ``f_statistic`` and ``p_value`` (R's Res.Df, RSS, Df, Sum of Sq, F, Pr(>F)); a
    likelihood-ratio test ``chisq``, ``df`` and ``p_value`` (Chisq, Df, Pr(>Chisq))."""

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
    chisq: Number = Field(description="Likelihood-ratio statistic (null in an F test table)")
    df: int | None = Field(description=(
        "Degrees of freedom of the test: the change in parameters (χ²), or the residual df "
        "of the row before minus this row's (F: negative when a larger model comes first, "
        "as in R)"))
    p_value: Number = Field(description="Pr(>Chisq) or Pr(>F)")
    res_df: Number = Field(None, description="Residual degrees of freedom (F test)")
    rss: Number = Field(None, description="Residual sum of squares (F test)")
    sum_of_sq: Number = Field(None, description=(
        "RSS of the row before minus this row's (F test)"))
    f_statistic: Number = Field(None, description=(
        "(sum_of_sq / df) over the residual mean square of the model with the fewest "
        "residual df (F test)"))


class ComparisonResult(BaseModel):
    test: Literal["F", "Chisq"] = Field("Chisq", description=(
        "The test of R's anova: \"F\" when every model is a least squares fit (anova.lm's F "
        "test on residual sums of squares), \"Chisq\" when a mixed model is among them "
        "(lme4's likelihood-ratio test, REML fits refitted by ML)"))
    rows: list[ComparisonTableRow] = Field(description=(
        "F test: in the order the models were given, as R's anova.lm; likelihood-ratio "
        "test: ordered by npar, as lme4's anova"))


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
    def from_row(cls, row: ComparisonRow, status: str | None = None,
                 with_result: bool = True) -> Comparison:
        """Without ``with_result`` the table is left out (null) and not read (lists)."""
        return cls(
            id=row.id, model_ids=list(row.model_ids), refits=dict(row.refits),
            status=status or row.status,  # type: ignore[arg-type]
            created_at=row.created_at, finished_at=row.finished_at,
            error=Problem.model_validate(row.error) if row.error else None,
            result=(ComparisonResult.model_validate(row.result)
                    if with_result and row.result else None),
        )


class ComparisonList(BaseModel):
    items: list[Comparison] = Field(description=(
        "Summaries (result null; a stored status: one whose fits have all finished is "
        "settled when read by its id)"))
    total: int
    limit: int
    offset: int
