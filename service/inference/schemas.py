"""Request and response bodies of /v1/models/{id}/intervals, /anova and /ranova."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.db.inference import IntervalRow
from service.errors import Problem

IntervalMethod = Literal["Wald", "profile", "boot"]
# A bootstrap's simulations when the request names none: lme4's confint(method = "boot")
# takes 500; 1000 (the example) halves the Monte Carlo variance of the 2.5% and
# 97.5% percentiles, for about 2 s of sleepstudy's refits. At most 10,000: ~20 s for such
# a model, and a bigger model's refits take proportionally longer under the fit's limit.
DEFAULT_NSIM = 1000
MAX_NSIM = 10_000
IntervalStatus = Literal["queued", "running", "succeeded", "failed"]


class IntervalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: IntervalMethod = Field(
        default="Wald",
        description="lme4's confint method. Wald: estimate ± z·SE for a mixed model's fixed "
                    "effects (null for its variance parameters, as lme4), estimate ± t·SE on "
                    "the residual df for a least squares model (R's confint.lm; the only "
                    "method an lm has); finished when created. profile: lme4's likelihood "
                    "profile of the ML deviance (a REML fit is profiled on its ML refit, as "
                    "lme4), every parameter on the sd/cor scale and every fixed effect. "
                    "boot: lme4's parametric bootstrap (bootMer, new random effects), "
                    "percentile intervals. profile and boot are mixed models' only, and run "
                    "as jobs: poll the Location")
    level: float = Field(default=0.95, gt=0.0, lt=1.0,
                         description="Confidence level, strictly between 0 and 1")
    nsim: int | None = Field(default=None, ge=1, le=MAX_NSIM, description=(
        f"Bootstrap simulations (boot only): {DEFAULT_NSIM} if omitted (lme4's confint "
        f"takes 500), at most {MAX_NSIM:,}. Each is a refit: a one-term model of a few "
        "hundred rows takes about 2 ms a refit, bigger models proportionally longer, all "
        "under the fit's time limit"))
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1, description=(
        "Random seed of the bootstrap (boot only): the same seed, model and nsim give the "
        "same intervals. If omitted the server chooses one and reports it. numpy's "
        "generator, not R's: the intervals agree with lme4's within Monte Carlo error"))


class IntervalBound(BaseModel):
    parm: str = Field(description="The parameter as confint(fit, oldNames = FALSE) names "
                                  "it: sd_(Intercept)|Subject, cor_Days.(Intercept)|Subject, "
                                  "sigma, then the fixed effects")
    lower: float | None = Field(description=(
        "null where R gives NA or an infinite bound: Wald's variance parameters, a profile "
        "that ends before the level's cut-off for a fixed effect. A profile that ends at a "
        "parameter's bound gives that bound, as lme4: 0 for a standard deviation, -1 or 1 "
        "for a correlation"))
    upper: float | None = Field(description="As lower")


class IntervalTable(BaseModel):
    method: IntervalMethod
    level: float
    rows: list[IntervalBound]


class Progress(BaseModel):
    done: int
    total: int


class Interval(BaseModel):
    id: str
    model_id: str
    method: IntervalMethod
    level: float
    nsim: int | None
    seed: int | None
    status: IntervalStatus
    progress: Progress | None = Field(
        None, description="How far a running job has come: simulations done of nsim "
                          "(boot), parameters profiled of all (profile); null for Wald")
    created_at: datetime
    finished_at: datetime | None
    error: Problem | None
    result: IntervalTable | None = Field(description="null until succeeded")

    @classmethod
    def from_row(cls, row: IntervalRow) -> Interval:
        data: dict[str, Any] = {name: getattr(row, name) for name in (
            "id", "model_id", "method", "level", "nsim", "seed", "status", "progress",
            "created_at", "finished_at", "error", "result")}
        return cls.model_validate(data)


AnovaKind = Literal[1, 2, 3]
Ddf = Literal["Satterthwaite", "Kenward-Roger"]


class AnovaRowOut(BaseModel):
    term: str = Field(description="The term as R labels it; the last row of a least squares "
                                  "table is R's Residuals (a mixed model's table has none)")
    sum_sq: float | None
    mean_sq: float | None
    num_df: float | None
    den_df: float | None = Field(description="The F test's denominator df; null for "
                                             "Residuals")
    f_value: float | None
    p_value: float | None


class AnovaTableOut(BaseModel):
    model_id: str
    type: AnovaKind = Field(description="1: sequential (R's anova.lm; lmerTest's type 1); "
                                        "2 and 3: car::Anova's types II and III for least "
                                        "squares, lmerTest's for mixed models")
    ddf: Ddf | None = Field(description="Denominator df method of a mixed model; null for "
                                        "least squares")
    rows: list[AnovaRowOut]


class RanovaRowOut(BaseModel):
    """One row of lmerTest's ranova table, with R's column names."""

    term: str = Field(description="<none> (the model itself), then each reduction as "
                                  "lmerTest names it: 'Days in (Days | Subject)' (Days "
                                  "left out of the term), '(1 | Subject)' (the term removed)")
    npar: int = Field(description="Number of parameters (fixed effects, variance "
                                  "parameters and sigma)")
    logLik: float = Field(description="Log-likelihood, REML for a REML fit (as lmerTest "
                                      "compares them), ML for an ML fit")
    AIC: float
    LRT: float | None = Field(description="Likelihood ratio statistic against <none>")
    Df: int | None = Field(description="Parameters removed: the test's chi-squared df")
    p_value: float | None = Field(description="Pr(>Chisq)")


class RanovaOut(BaseModel):
    model_id: str
    method: Literal["REML", "ML"] = Field(
        description="The likelihood the models are compared by: the fit's own")
    rows: list[RanovaRowOut]
