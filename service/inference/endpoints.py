"""HTTP routes of /v1/models/{id}/intervals, /anova and /ranova.

A finished model is immutable, so its anova and ranova tables carry its ETag and are
cached as /random-effects is (``freshness(..., derived=True)``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from service.db.session import end_reads
from service.dependencies import (
    ComputeDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    committed_unit_of_work,
)
from service.errors import problem_responses
from service.inference import service
from service.inference.repository import FINISHED
from service.inference.schemas import AnovaTableOut, Ddf, Interval, IntervalCreate, RanovaOut
from service.inspection.service import StoredModel
from service.models import service as models
from service.models.caching import NOT_MODIFIED, Freshness, freshness
from service.models.references import ModelIdDep
from service.models.watch import read_when_finished

router = APIRouter(prefix="/v1/models", tags=["inference"])


@router.post("/{model_id}/intervals", status_code=202, response_model=Interval,
             responses=problem_responses(404, 409, 422))
async def create_interval(model_id: ModelIdDep, spec: IntervalCreate, request: Request,
                          settings: SettingsDep) -> Response:
    """Confidence intervals of a fitted model (R's confint); poll the Location.

    Wald intervals (and an lm's t intervals) come from the stored result and are finished
    when this answers; profile and bootstrap intervals are queued as a job (status
    queued, then running with progress, then succeeded or failed).
    """

    def create() -> Interval:
        # committed before the worker is woken, so that it finds the job
        with committed_unit_of_work(request) as session:
            return Interval.from_row(service.create_interval(session, model_id, spec,
                                                             settings.max_attempts))

    interval = await run_in_threadpool(create)
    if interval.status == "queued":
        request.app.state.wake_workers()
    return Response(interval.model_dump_json(), status_code=202,
                    media_type="application/json",
                    headers={"Location": f"/v1/models/{model_id}/intervals/{interval.id}"})


@router.get("/{model_id}/intervals/{interval_id}", response_model=Interval,
            responses=problem_responses(404, 422))
async def get_interval(
    model_id: ModelIdDep,
    interval_id: str,
    request: Request,
    session: ReadSessionDep,
    settings: SettingsDep,
    wait: Annotated[float, Query(ge=0, description=(
        "Seconds to wait for the intervals to be computed (long poll); capped at the "
        "server's MIXEDFIT_MAX_WAIT_SECONDS. Wald intervals are finished when created, so "
        "they answer at once"))] = 0,
) -> Interval:
    """Read intervals: status, progress, and once succeeded the table."""
    return await read_when_finished(
        request.app.state.interval_watch, interval_id,
        lambda: _read_interval(session, model_id, interval_id), FINISHED,
        min(wait, settings.max_wait_seconds), request.is_disconnected)


def _read_interval(session: Session, model_id: str, interval_id: str) -> Interval:
    interval = Interval.from_row(service.get_interval(session, model_id, interval_id))
    end_reads(session)  # a long poll holds no transaction while it waits
    return interval


@router.get("/{model_id}/anova", response_model=AnovaTableOut,
            responses={**NOT_MODIFIED, **problem_responses(404, 409, 422)})
async def get_anova(
    model_id: ModelIdDep,
    request: Request,
    response: Response,
    session: SessionDep,
    pool: ComputeDep,
    type: Annotated[int | None, Query(ge=1, le=3, description=(
        "1: sequential; 2 and 3: marginal (lmerTest's types for a mixed model, car::Anova's "
        "for least squares). Default: 3 for a mixed model (lmerTest), 1 for least squares "
        "(R's anova.lm)"))] = None,
    ddf: Annotated[Ddf, Query(description=(
        "Denominator df of a mixed model's F tests: Satterthwaite (lmerTest's default) or "
        "Kenward-Roger (pbkrtest's, with its scaled F; REML fits only); ignored by least "
        "squares"))] = "Satterthwaite",
) -> Any:
    """The anova table: R's anova.lm/car::Anova for least squares, lmerTest's for mixed
    models."""
    fresh = await _freshness(request, session, model_id)
    if fresh.not_modified:
        return fresh.not_modified_response()
    prepared = await run_in_threadpool(service.prepare_anova, session, model_id, type, ddf)
    if isinstance(prepared, StoredModel):
        # the design, the derivatives at the optimum (and Kenward-Roger's n × n covariance)
        # are built from the data: in a compute child, never in the API process
        prepared = await pool.run("computing the anova table", service.mixed_anova,
                                  prepared, type, ddf, gone=request.is_disconnected)
    fresh.apply(response)
    return prepared


@router.get("/{model_id}/ranova", response_model=RanovaOut,
            responses={**NOT_MODIFIED, **problem_responses(404, 409, 422)})
async def get_ranova(model_id: ModelIdDep, request: Request, response: Response,
                     session: SessionDep, pool: ComputeDep) -> Any:
    """lmerTest's ranova: each random-effects term reduced, the model refitted and compared
    by a likelihood ratio test (REML for a REML fit)."""
    fresh = await _freshness(request, session, model_id)
    if fresh.not_modified:
        return fresh.not_modified_response()
    model = await run_in_threadpool(service.prepare_ranova, session, model_id)
    table = await pool.run("refitting the reduced models", service.ranova_table, model,
                           gone=request.is_disconnected)
    fresh.apply(response)
    return table


async def _freshness(request: Request, session: Session, model_id: str) -> Freshness:
    row = await run_in_threadpool(models.model_version, session, model_id)
    return freshness(request, row, derived=True)
