"""HTTP routes of /v1/models/{id}/intervals and /v1/models/{id}/anova."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from service.dependencies import SessionDep, SettingsDep, WriteSessionDep
from service.errors import problem_responses
from service.inference import service
from service.inference.schemas import AnovaTableOut, Ddf, Interval, IntervalCreate

router = APIRouter(prefix="/v1/models", tags=["inference"])


@router.post("/{model_id}/intervals", status_code=202, response_model=Interval,
             responses=problem_responses(404, 409, 422))
def create_interval(model_id: str, spec: IntervalCreate, response: Response,
                    session: WriteSessionDep) -> Interval:
    """Confidence intervals of a fitted model (R's confint); poll the Location.

    Wald intervals (and an lm's t intervals) come from the stored result and are finished
    when this answers; profile and bootstrap intervals are not yet available (422).
    """
    row = service.create_interval(session, model_id, spec)
    response.headers["Location"] = f"/v1/models/{model_id}/intervals/{row.id}"
    return Interval.from_row(row)


@router.get("/{model_id}/intervals/{interval_id}", response_model=Interval,
            responses=problem_responses(404, 422))
def get_interval(
    model_id: str,
    interval_id: str,
    session: SessionDep,
    settings: SettingsDep,
    wait: Annotated[float, Query(ge=0, description=(
        "Seconds to wait for the intervals to be computed (long poll); capped at the "
        "server's MIXEDFIT_MAX_WAIT_SECONDS. Wald intervals are finished when created, so "
        "they answer at once"))] = 0,
) -> Interval:
    """Read intervals: status, and once succeeded the table."""
    del wait, settings  # every interval available today is finished when created
    return Interval.from_row(service.get_interval(session, model_id, interval_id))


@router.get("/{model_id}/anova", response_model=AnovaTableOut,
            responses=problem_responses(404, 409, 422))
async def get_anova(
    model_id: str,
    session: SessionDep,
    type: Annotated[int | None, Query(ge=1, le=3, description=(
        "1: sequential sums of squares (R's anova.lm, the default for lm); 2 and 3: "
        "car::Anova's types II and III"))] = None,
    ddf: Annotated[Ddf, Query(description=(
        "Denominator df of a mixed model's F tests (lmerTest); ignored by lm"))]
        = "Satterthwaite",
) -> AnovaTableOut:
    """The anova table of a least squares model (mixed models: not yet available, 422)."""
    return await run_in_threadpool(service.anova, session, model_id, type, ddf)
