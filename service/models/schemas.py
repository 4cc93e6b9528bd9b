"""Request and response bodies of the models API.

The result schemas type the fields of the v1 contract and let further fields through
(``extra="allow"``): the statistics core adds diagnostics over time and the API passes them
on. Every number may be null: R reports NA for an aliased coefficient, for instance.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from service.datasets.schemas import Cell
from service.db.models import ModelRow
from service.errors import Problem
from service.models.listing import Sort
from service.pagination import PageQuery
from service.registry.names import (
    MAX_TAG_VALUE,
    MAX_TAGS,
    NAME_MESSAGE,
    TAG_KEY,
    TAG_KEY_RULE,
    check_name,
)

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
# as service.stats.design.contrasts.CODINGS (the core refuses anything else too)
Coding = Literal["contr.treatment", "contr.sum", "contr.helmert", "contr.poly", "contr.SAS"]
Kind = Literal["lm", "lmm", "lm_by_group"]
Number = float | None


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class FixedEffect(_Open):
    term: str
    estimate: Number
    std_error: Number = None
    statistic: Number = None
    df: Number = None
    p_value: Number = None
    conf_low: Number = None
    conf_high: Number = None
    aliased: bool = Field(
        default=False,
        description="A column that is a combination of earlier ones (rank-deficient model "
                    "matrix): not estimable, so every number is null, as R's summary prints "
                    "NA for it; predictions leave it out")


class RandomEffectsTerm(_Open):
    group: str = Field(description="The grouping factor as R's VarCorr names it: a second "
                       "term of the same factor is `Subject.1`, as in `(Days || Subject)`")
    terms: list[str]
    std_dev: list[Number]
    variance: list[Number]
    correlation: list[list[Number]]
    n_levels: int
    covariance: list[list[Number]] = Field(default_factory=list, description=(
        "VarCorr's covariance matrix of the term's effects (variances on the diagonal), "
        "as as.data.frame(VarCorr(fit))'s vcov column gives its entries"))

    @model_validator(mode="after")
    def _covariance_of_older_results(self) -> RandomEffectsTerm:
        # results stored before the covariance was: the same numbers from sd and cor
        if not self.covariance and self.std_dev and None not in self.std_dev:
            sd = [float(v) for v in self.std_dev if v is not None]
            self.covariance = [[None if c is None else c * sd[i] * sd[j]
                                for j, c in enumerate(row)]
                               for i, row in enumerate(self.correlation)]
        return self


class Metrics(_Open):
    n_obs: int
    loglik: Number = Field(None, description="R's logLik: the maximized log-likelihood of "
                           "an ML fit, the REML log-likelihood (-reml_criterion / 2) of a "
                           "REML fit")
    aic: Number = Field(None, description="R's AIC, from loglik")
    bic: Number = Field(None, description="R's BIC, from loglik")
    deviance: Number = Field(None, description="lm: the residual sum of squares (R's "
                             "deviance). Mixed models: the ML deviance (-2 log L); for a "
                             "REML fit, that of the model refitted by ML, as lme4's "
                             "deviance(refitML(fit)) and anova compare it")
    reml_criterion: Number = Field(None, description="REML fits: lme4's REMLcrit, -2 times "
                                   "the REML log-likelihood (null for ML fits and lm)")
    sigma: Number = None
    rmse: Number = None
    df_residual: Number = Field(None, description="R's df.residual: n minus the number of "
                                "parameters (lm: coefficients; mixed models: fixed effects, "
                                "θ and σ)")
    r_squared: Number = None
    adj_r_squared: Number = None
    r2_marginal: Number = None
    r2_conditional: Number = None


class Convergence(_Open):
    converged: bool
    singular: bool
    optimizer: str
    iterations: int
    messages: list[str] = []


class Covariance(BaseModel):
    terms: list[str] = Field(description="The fixed effects naming the rows and columns")
    matrix: list[list[Number]] = Field(
        description="R's vcov(fit): the estimated covariance of the fixed effects; an "
                    "aliased coefficient of an lm has a row and column of nulls (R's NA)")
    correlation: list[list[Number]] = Field(
        description="Its correlation (cov2cor), R's 'Correlation of Fixed Effects'")


class FitResult(_Open):
    fixed_effects: list[FixedEffect]
    random_effects: list[RandomEffectsTerm] = []
    residual_std_dev: Number = None
    metrics: Metrics
    convergence: Convergence
    theta: list[Number] = []
    fit_seconds: Number = Field(None, description=(
        "Seconds the engine took, from the formula to the result: the design, the "
        "optimization and the result's statistics (not the time queued or stored)"))
    vcov: Covariance | None = Field(
        None, description="Covariance of the fixed effects (null for per-group fits, and "
                          "for models stored before it was computed)")


class ModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: str = Field(max_length=36)
    formula: str = Field(min_length=1, max_length=10_000,
                         examples=["Mood ~ Exercise + (1 + Exercise | State)"])
    method: Literal["REML", "ML"] = Field(
        default="REML", description="Estimation for mixed models; least-squares fits ignore it")
    pool: bool = Field(
        default=True,
        description="Per-group fits (y ~ x | g, R's lmList): standard errors, t tests and "
                    "intervals from the residual SD pooled over the groups, as "
                    "summary(lmList(...)) by default (true), or from each group's own fit "
                    "(false); other models ignore it")
    contrasts: dict[Annotated[str, Field(max_length=1000)], Coding] | None = Field(
        default=None, max_length=100, examples=[{"recipe": "contr.sum"}], description=(
            "The coding of factor columns of the fixed effects, as the contrasts argument "
            "of R's lm and lmer: column -> contr.treatment (the default), contr.sum, "
            "contr.helmert, contr.poly or contr.SAS. Columns are named as R names them "
            "(recipe1, recipe2 for sum and helmert; temp.L, temp.Q, temp.C, temp^4 for "
            "poly). As lme4, random-effects terms keep treatment coding"))
    weights: str | None = Field(
        default=None, max_length=1000, examples=["w"], description=(
            "A numeric column of prior weights, as the weights argument of R's lm and lmer: "
            "row i's residual variance is sigma^2 / w_i. Rows with a missing weight are "
            "dropped (R's na.omit), rows with weight 0 are left out of the fit (as lm leaves "
            "them out of the likelihood and residual df; lme4 would report logLik -Inf), a "
            "negative weight fails the fit"))
    name: str | None = Field(default=None, description=(
        "A registered name: the model becomes its next version (1, 2, 3 ...), reachable "
        f"as /v1/models/<name>@<version> and through the name's aliases. {NAME_MESSAGE}."))

    @field_validator("name")
    @classmethod
    def _registry_name(cls, name: str | None) -> str | None:
        return None if name is None else check_name(name)


Tags = dict[str, str]


class Model(BaseModel):
    id: str
    name: str | None = Field(description=(
        "The registered name (with 'version'); for a model stored before the registry "
        "whose name is no valid registry name, and for a comparison's ML refits, a "
        "free-text label (version null)"))
    version: int | None = Field(description="Its version under 'name', or null")
    tags: Tags = Field(description="Free key: value metadata, the one mutable part of a "
                                   "model (PATCH /v1/models/{id})")
    dataset_id: str
    formula: str
    method: str
    pool: bool | None = Field(
        description="Per-group fits: whether the coefficient tables use the pooled residual "
                    "SD; null for other models")
    contrasts: dict[str, str] | None = Field(
        None, description="The coding of factor columns the model was created with (null: "
                          "treatment coding of every factor)")
    weights: str | None = Field(
        None, description="The column of prior weights the model was fitted with (null: "
                          "unit weights)")
    kind: Kind
    status: Status
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: Problem | None = Field(description="Why the fit failed (a problem document), or null")
    result: FitResult | None = Field(description="The fit, once it has succeeded")

    @classmethod
    def from_row(cls, row: ModelRow, with_result: bool = True) -> Model:
        """The model's document; without ``with_result`` its result is left out (null), and
        the row's result column is not touched (lists defer it)."""
        return cls(
            id=row.id, name=row.name, version=row.version, tags=row.tags or {},
            dataset_id=row.dataset_id, formula=row.formula,
            method=row.method, pool=row.pool, contrasts=row.contrasts, weights=row.weights,
            kind=row.kind,  # type: ignore[arg-type]
            status=row.status,  # type: ignore[arg-type]
            created_at=row.created_at, started_at=row.started_at, finished_at=row.finished_at,
            error=_problem(row.error),
            result=(FitResult.model_validate(row.result)
                    if with_result and row.result else None),
        )


def _problem(stored: dict[str, Any] | None) -> Problem | None:
    if not stored:
        return None
    try:
        return Problem.model_validate(stored)
    except ValidationError:
        # a stored document of another shape must not make the model unreadable
        status = stored.get("status")
        return Problem(title="The fit failed", status=status if isinstance(status, int) else 500,
                       detail=str(stored.get("detail") or stored)[:2000])


class ModelPatch(BaseModel):
    """A JSON merge patch (RFC 7396) of a model: only its tags can change."""

    model_config = ConfigDict(extra="forbid")

    tags: dict[str, str | None] = Field(description=(
        "Tags to set (key: value) or remove (key: null); tags not named are kept. Keys: "
        f"{TAG_KEY_RULE}; values: up to {MAX_TAG_VALUE} characters; at most {MAX_TAGS} tags"))

    @field_validator("tags")
    @classmethod
    def _tag_keys(cls, tags: dict[str, str | None]) -> dict[str, str | None]:
        for key, value in tags.items():
            if TAG_KEY.fullmatch(key) is None:
                raise ValueError(f"The tag key {key!r} is not of the form {TAG_KEY_RULE} "
                                 "(it is used in ?tag=key:value filters)")
            if value is not None and len(value) > MAX_TAG_VALUE:
                raise ValueError(f"The value of tag {key!r} is longer than {MAX_TAG_VALUE} "
                                 "characters")
        return tags


class ModelListQuery(PageQuery):
    status: Status | None = Field(None, description="Only models with this status")
    kind: Kind | None = Field(None, description="Only models of this kind")
    name: str | None = Field(None, max_length=200, description="Only versions of this name")
    tag: list[str] = Field([], description=(
        "Only models with this tag, as key:value (repeat for several: all must match)"))
    dataset_id: str | None = Field(None, max_length=36, description="Only models of this dataset")
    created_after: datetime | None = Field(None, description="Created after this time")
    created_before: datetime | None = Field(None, description="Created before this time")
    sort: Sort = Field("-created_at", description=(
        "created_at (oldest first), -created_at (newest first) or name (then version)"))
    cursor: str | None = Field(None, max_length=2000, description=(
        "Continue after the page this came from (its 'next' link carries it)"))
    include: Literal["result"] | None = Field(None, description=(
        "'result' embeds each model's full result; without it the list has summaries "
        "(result null: read a model by its id for its result)"))


class ModelList(BaseModel):
    items: list[Model]
    total: int = Field(description="How many models pass the filters")
    limit: int
    offset: int
    next: str | None = Field(None, description=(
        "The URL of the next page (a cursor after this page's last model, with the same "
        "filters and sort), or null on the last page"))


NewLevels = Literal["population", "error"]
IntervalKind = Literal["none", "confidence", "prediction"]
INTERVAL_DESCRIPTION = (
    "Add se_fit, lower and upper: 'confidence' for the mean prediction, 'prediction' for a "
    "new observation. lm: R's predict.lm(interval = ..., se.fit = TRUE), t quantiles on the "
    "residual df. Mixed models (normal quantiles, variance parameters taken as known): "
    "se_fit from vcov (x'Vx) plus, for each included random term whose level was seen, the "
    "conditional covariance of that level's modes (z'Cz; their covariance with the fixed "
    "effects is ignored); a prediction interval adds sigma^2 and, for each term left out "
    "or whose level is new, the term's variance z'Sigma z (VarCorr). Per-group fits: each "
    "group's own lm")
LEVEL_DESCRIPTION = "The intervals' coverage, between 0 and 1"
RANDOM_EFFECTS_DESCRIPTION = (
    "Mixed models: include only the effects of these grouping factors, as named in the "
    "signature's groups (lme4's re.form = ~(1 | Subject)); [] is re.form = NA. Default: "
    "all of them (or none with include_random_effects false)")


class PredictionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[dict[str, Cell]] | None = Field(
        default=None, min_length=1,
        description="The new rows as objects (column name: value); or give 'columns'")
    columns: dict[str, list[Cell]] | None = Field(
        default=None, min_length=1,
        description="The new rows column by column (column name: one value per row), the "
                    "compact form for many rows; or give 'records'")
    dataset_id: str | None = Field(
        default=None, max_length=36,
        description="Score a stored dataset instead, as a job: the answer is 202 with the "
                    "Location of the batch, whose predictions download as Parquet or CSV; "
                    "for data far larger than a request body")
    include_random_effects: bool = Field(
        default=True, description="Add the conditional modes of the groups seen in fitting")
    new_levels: NewLevels = Field(
        default="population",
        description="A group level not seen in fitting: predict at the population level, "
                    "or refuse with 422")
    interval: IntervalKind = Field(default="none", description=INTERVAL_DESCRIPTION)
    level: float = Field(default=0.95, gt=0, lt=1, description=LEVEL_DESCRIPTION)
    random_effects: list[Annotated[str, Field(max_length=1000)]] | None = Field(
        default=None, max_length=100, description=RANDOM_EFFECTS_DESCRIPTION)

    @model_validator(mode="after")
    def _one_shape(self) -> PredictionRequest:
        given = [self.records is not None, self.columns is not None, self.dataset_id is not None]
        if sum(given) != 1:
            raise ValueError("give the new rows as 'records' or 'columns', or a stored "
                             "dataset as 'dataset_id' (one of them)")
        check_random_effects(self.include_random_effects, self.random_effects)
        return self

    @property
    def n_rows(self) -> int:
        if self.records is not None:
            return len(self.records)
        return max((len(values) for values in (self.columns or {}).values()), default=0)


def check_random_effects(include_random_effects: bool, random_effects: list[str] | None) -> None:
    """Refuse ``include_random_effects`` false with grouping factors to include."""
    if not include_random_effects and random_effects:
        raise ValueError("include_random_effects is false but random_effects names grouping "
                         "factors to include: give one of them")


class Predictions(BaseModel):
    model_id: str
    predictions: list[Number]
    interval: IntervalKind | None = Field(None, description="With an interval: its kind")
    level: float | None = Field(None, description="With an interval: its coverage")
    se_fit: list[Number] | None = Field(None, description=(
        "With an interval: the standard error of each prediction (of the mean, also for a "
        "prediction interval, as R's se.fit)"))
    lower: list[Number] | None = Field(None, description="With an interval: lower bounds")
    upper: list[Number] | None = Field(None, description="With an interval: upper bounds")




class LevelEffects(BaseModel):
    level: str
    modes: list[Number] = Field(description="Conditional modes, aligned with the block's terms")
    cond_sd: list[Number] = Field(description="Conditional standard deviations of the modes")
    cond_cov: list[list[Number]] | None = Field(None, description=(
        "The modes' conditional covariance matrix (q x q, aligned with the block's terms): "
        "this level's slice of lme4's ranef(fit, condVar = TRUE) postVar array; null for "
        "models fitted before it was stored"))


class RandomEffectsBlock(BaseModel):
    group: str
    terms: list[str]
    levels: list[LevelEffects]


class RandomEffects(BaseModel):
    """R's ``ranef(m, condVar = TRUE)``: one block per random-effects term."""

    model_id: str
    random_effects: list[RandomEffectsBlock]


class LevelCoefficients(BaseModel):
    level: str
    values: list[Number] = Field(description="Coefficients, aligned with the group's terms")


class GroupCoefficients(BaseModel):
    group: str
    terms: list[str]
    levels: list[LevelCoefficients]


class Coefficients(BaseModel):
    """R's ``coef(m)``: per grouping factor, fixed effects plus each level's modes."""

    model_id: str
    coefficients: list[GroupCoefficients]
