"""Response bodies of the residuals and plots of a model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.models.schemas import Kind

Number = float | None
ResidualFormat = Literal["json", "csv"]
ImageFormat = Literal["png", "svg"]


class ResidualRow(BaseModel):
    """One observation used in the fit; the grouping columns follow as extra members."""

    model_config = ConfigDict(extra="allow",
                              json_schema_extra={"additionalProperties": {"type": "string"}})

    row: int = Field(description=(
        "The row's number in the dataset as R numbers it, from 1 (R's row names, "
        "names(resid(fit)); rows dropped for missing values leave gaps)"))
    fitted: Number
    residual: Number
    std_residual: Number = Field(description=(
        "R's rstandard for least squares fits; residual / sigma for mixed models"))


class BreuschPaganTest(BaseModel):
    """Koenker's studentized Breusch-Pagan test of constant variance (lmtest::bptest)."""

    statistic: float
    df: int
    p_value: float


class GroupSpread(BaseModel):
    group: str
    level: str
    n_obs: int
    mean_residual: Number
    residual_sd: Number = Field(description="R's sd (n - 1); null for a level with one row")


class ResidualSummary(BaseModel):
    breusch_pagan: BreuschPaganTest | None = Field(
        description="For least squares fits with a regressor beside the intercept, else null")
    spread: list[GroupSpread] = Field(description="Residual spread per level of each group")


class Residuals(BaseModel):
    model_id: str
    kind: Kind
    group_columns: list[str]
    rows: list[ResidualRow]
    summary: ResidualSummary


class PlotLink(BaseModel):
    name: str
    png: str = Field(description="URL of the plot as PNG")
    svg: str = Field(description="URL of the plot as SVG")


class PlotList(BaseModel):
    model_id: str
    kind: Kind
    plots: list[PlotLink]
