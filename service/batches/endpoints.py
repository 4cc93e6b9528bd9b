"""HTTP routes of /v1/models/{id}/predictions/{batch_id} (batch predictions).

A batch is created by ``POST /v1/models/{id}/predictions`` with ``{"dataset_id": ...}``
(service.models.endpoints hands such a body to :func:`create_batch_response`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from service.batches import service
from service.batches.output import CSV, PARQUET, parquet_to_csv, wants_csv
from service.batches.repository import FINISHED
from service.batches.schemas import PredictionBatch
from service.db.session import end_reads
from service.dependencies import ComputeDep, ReadSessionDep, SettingsDep, committed_unit_of_work
from service.errors import problem_responses
from service.models.caching import NOT_MODIFIED, finished_freshness
from service.models.references import ModelIdDep
from service.models.schemas import PredictionRequest
from service.models.watch import read_when_finished

router = APIRouter(prefix="/v1/models", tags=["predictions"])


async def create_batch_response(request: Request, model_id: str, spec: PredictionRequest,
                                max_attempts: int) -> Response:
    """Queue a batch prediction: 202, its Location and its document."""

    def create() -> PredictionBatch:
        with committed_unit_of_work(request) as session:
            return PredictionBatch.from_row(
                service.create_batch(session, model_id, spec, max_attempts))

    batch = await run_in_threadpool(create)
    request.app.state.wake_workers()
    return Response(batch.model_dump_json(), status_code=202, media_type="application/json",
                    headers={"Location": batch.links.self})


@router.get("/{model_id}/predictions/{batch_id}", response_model=PredictionBatch,
            responses=problem_responses(404, 422))
async def get_batch(
    model_id: ModelIdDep,
    batch_id: str,
    request: Request,
    session: ReadSessionDep,
    settings: SettingsDep,
    wait: Annotated[float, Query(ge=0, description=(
        "Seconds to wait for the batch to finish (long poll); capped at the server's "
        "MIXEDFIT_MAX_WAIT_SECONDS"))] = 0,
) -> PredictionBatch:
    """A batch prediction's status; once succeeded, ``links.result`` downloads it."""
    return await read_when_finished(
        request.app.state.batch_watch, batch_id, lambda: _read(session, model_id, batch_id),
        FINISHED, min(wait, settings.max_wait_seconds), request.is_disconnected)


def _read(session: Any, model_id: str, batch_id: str) -> PredictionBatch:
    batch = PredictionBatch.from_row(service.get_batch(session, model_id, batch_id))
    end_reads(session)  # a long poll holds no transaction while it waits
    return batch


@router.get("/{model_id}/predictions/{batch_id}/result", responses={
    200: {"description": "The predictions, one per dataset row in its order (null for a "
                         "row with a missing value, as R's predict gives NA)",
          "content": {PARQUET: {"schema": {"type": "string", "format": "binary"}},
                      CSV: {"schema": {"type": "string"}}}},
    **NOT_MODIFIED, **problem_responses(404, 409)})
async def get_batch_result(model_id: ModelIdDep, batch_id: str, request: Request,
                           session: ReadSessionDep, pool: ComputeDep) -> Response:
    """Download a succeeded batch's predictions: Parquet (one column, ``prediction``), or
    CSV when ``Accept`` asks for text/csv. Immutable: an ETag and If-None-Match's 304."""
    row = await run_in_threadpool(service.succeeded_batch, session, model_id, batch_id)
    assert row.finished_at is not None
    fresh = finished_freshness(request, row.id, row.finished_at)
    if fresh.not_modified:
        return fresh.not_modified_response()
    content = await run_in_threadpool(service.predictions_of, session, row)
    end_reads(session)
    filename = f"predictions-{row.id}"
    if wants_csv(request.headers.get("accept")):
        body = await pool.run("writing the predictions as CSV", parquet_to_csv, content,
                              gone=request.is_disconnected)
        response = Response(body, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{filename}.csv"'})
    else:
        response = Response(content, media_type=PARQUET, headers={
            "Content-Disposition": f'attachment; filename="{filename}.parquet"'})
    return fresh.apply(response)
