"""HTTP routes of /v1/models."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from service.auth.principal import Principal
from service.batches.endpoints import create_batch_response
from service.batches.schemas import PredictionBatch
from service.body import media_type, read_body, unsupported
from service.db.models import ModelRow
from service.dependencies import (
    ComputeDep,
    SessionDep,
    SettingsDep,
    committed_unit_of_work,
    get_principal,
    get_read_session_factory,
    read_unit_of_work,
)
from service.errors import InvalidInput, problem_responses
from service.jobs.embedded import EmbeddedWorker
from service.jobs.tasks import fit_request
from service.models import effects, service
from service.models.caching import NOT_MODIFIED, freshness
from service.models.documents import ModelDocuments, Rendered, read_and_render
from service.models.predicting import (
    BODY_TYPES,
    PARQUET,
    PredictionAnswer,
    PredictionOptions,
    predict_body,
    predict_rows,
    prediction_request,
    read_body_shape,
)
from service.models.prediction_output import OPENAPI_CONTENT, answer_type, predictions_response
from service.models.predictors import CachedModel, PredictorCache
from service.models.reading import model_answer
from service.models.references import ModelIdDep
from service.models.schemas import (
    INTERVAL_DESCRIPTION,
    LEVEL_DESCRIPTION,
    RANDOM_EFFECTS_DESCRIPTION,
    Coefficients,
    IntervalKind,
    Model,
    ModelCreate,
    ModelList,
    ModelListQuery,
    ModelPatch,
    NewLevels,
    PredictionRequest,
    Predictions,
    RandomEffects,
    check_random_effects,
)
from service.models.signature import Signature, signature
from service.models.watch import FinishWatch
from service.settings import Settings

router = APIRouter(prefix="/v1/models", tags=["models"])
PREDICTION_SETTING = "MIXEDFIT_MAX_PREDICTION_BYTES"
# a JSON or CSV body this small (some tens of rows) from a current cached model is
# predicted on the event loop
LOOP_PREDICTION_BYTES = 2048

_PREDICTION_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": PredictionRequest.model_json_schema()},
            "text/csv": {"schema": {"type": "string"},
                         "description": "New data; options as query parameters"},
            PARQUET: {"schema": {"type": "string", "format": "binary"},
                      "description": "New data as a Parquet file; options as query "
                                     "parameters"},
        },
    }
}


@router.post("", status_code=202, response_model=Model,
             responses={201: {"model": Model, "description": (
                 "With ?wait=S: the fit finished within S seconds; the model with its "
                 "result (or its error)")}, **problem_responses(404, 413, 422)})
async def create_model(
    spec: ModelCreate,
    request: Request,
    response: Response,
    settings: SettingsDep,
    wait: Annotated[float, Query(ge=0, description=(
        "Seconds to wait for the fit to finish: if it does, the answer is 201 with the "
        "finished model, so a small fit is one round trip; else the usual 202. Capped at "
        "the server's MIXEDFIT_MAX_WAIT_SECONDS"))] = 0,
) -> Any:
    """Check a formula against its dataset and queue the fit (202; poll the Location)."""
    watch: FinishWatch = request.app.state.finish_watch
    model_id = str(uuid.uuid4())
    # watched before its worker can start: the fit cannot finish unseen
    registered = watch.register(model_id) if wait > 0 else None
    # a client that waits has its fit handed straight to this process's worker, if idle
    direct: EmbeddedWorker | None = request.app.state.embedded_worker if wait > 0 else None
    try:
        row = await run_in_threadpool(_create, request, spec, settings, model_id, direct)
    except BaseException:
        if registered is not None:
            watch.forget(model_id, registered)
        raise
    request.app.state.wake_workers()
    location = f"/v1/models/{model_id}"
    response.headers["Location"] = location
    if registered is None:
        return Model.from_row(row)
    principal = get_principal(request)
    factory = get_read_session_factory(request)

    async def read() -> Rendered:
        # the document this process's worker read when the fit ended, if it handed one
        # over: this client created the model, so it may see it; else read it now
        handed = watch.take_handed(model_id)
        if isinstance(handed, Rendered) and handed.id == model_id:
            return handed
        return await run_in_threadpool(read_and_render, factory, principal, model_id)

    # each read is the whole document (a queued model's is small): once the fit has
    # finished, one read answers, not a read of the status and then of the document; at
    # the end of the wait, the model as it is then (running, say)
    rendered = await service.wait_for_model(
        read, min(wait, settings.max_wait_seconds), watch, gone=request.is_disconnected,
        just_queued=(model_id, registered))
    finished = rendered.status in service.FINISHED
    if finished:
        _documents(request).keep(rendered)
    return Response(rendered.body, status_code=201 if finished else 202,
                    media_type="application/json", headers={"Location": location})


def _create(request: Request, spec: ModelCreate, settings: Settings, model_id: str,
            direct: EmbeddedWorker | None) -> ModelRow:
    # committed here, not when the endpoint returns: a worker can only claim what is
    # committed, and ?wait waits for that worker. An idle worker of this process is handed
    # the fit with its job inserted already claimed by it: no claim, no poll.
    lease = direct.reserve() if direct is not None else None
    handed = False
    try:
        with committed_unit_of_work(request) as session:
            row, job = service.create_model_and_job(
                session, spec, settings.max_attempts, service.DesignLimits.of(settings),
                model_id=model_id, claimed=lease)
        if direct is not None and lease is not None:
            direct.hand(job, fit_request(row, None))
            handed = True
    finally:
        if direct is not None and lease is not None and not handed:
            direct.unreserve()
    return row


@router.get("", response_model=ModelList, responses=problem_responses(422))
def list_models(session: SessionDep, request: Request,
                query: Annotated[ModelListQuery, Query()]) -> ModelList:
    """List models (summaries unless ``include=result``), filtered and sorted, newest first
    by default; ``next`` links the following page. An unknown parameter is a 422."""
    page = service.list_models(session, query)
    return ModelList(items=[Model.from_row(r, query.include == "result") for r in page.rows],
                     total=page.total, limit=query.limit, offset=query.offset,
                     next=_next_link(request, page.next_cursor))


def _next_link(request: Request, cursor: str | None) -> str | None:
    """This request's URL (path and query) continued after ``cursor``."""
    if cursor is None:
        return None
    url = request.url.remove_query_params(["offset", "cursor"]).include_query_params(
        cursor=cursor)
    return f"{url.path}?{url.query}"


@router.get("/{model_id}", response_model=Model, responses={
    **NOT_MODIFIED, **problem_responses(404, 422)})
async def get_model(
    model_id: ModelIdDep,
    request: Request,
    wait: Annotated[float, Query(ge=0, description=(
        "Seconds to wait for the fit to finish before answering (long poll); capped at the "
        "server's MIXEDFIT_MAX_WAIT_SECONDS"))] = 0,
) -> Any:
    """Read a model; with ``wait``, answer as soon as its fit has finished. A finished
    model carries an ETag (If-None-Match gives 304) and is revalidated: its tags change."""
    return await model_answer(request, model_id, wait)


@router.patch("/{model_id}", response_model=Model, responses=problem_responses(404, 422),
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/merge-patch+json": {"schema": ModelPatch.model_json_schema()},
                  "application/json": {"schema": ModelPatch.model_json_schema()}}}})
def patch_model(model_id: ModelIdDep, patch: ModelPatch, session: SessionDep) -> Model:
    """Set or remove a model's tags (JSON merge patch: null removes one); tags are the
    only part of a model that changes."""
    return Model.from_row(service.patch_tags(session, model_id, patch))


@router.post("/{model_id}/cancel", response_model=Model, responses=problem_responses(404, 409))
def cancel_model(model_id: ModelIdDep, request: Request) -> Model:
    """Cancel a queued or running fit: the model is ``cancelled`` at once, and a running
    fit's process is stopped within a second; 409 once the fit has ended."""
    with committed_unit_of_work(request) as session:
        model = Model.from_row(service.cancel_model(session, model_id))
    # long polls on the model (in this process) answer now
    watch: FinishWatch | None = getattr(request.app.state, "finish_watch", None)
    if watch is not None:
        watch.wake()
    return model


@router.delete("/{model_id}", status_code=204, responses=problem_responses(404, 409))
def delete_model(model_id: ModelIdDep, request: Request) -> Response:
    """Delete a model and what is stored about it; 409 while an alias points at it or its
    fit is running."""
    with committed_unit_of_work(request) as session:
        service.delete_model(session, model_id)
    # after the commit: a request in between could otherwise cache the model again
    caches = (getattr(request.app.state, "predictor_cache", None), _documents(request))
    for cache in caches:
        if cache is not None:
            cache.discard(model_id)
    return Response(status_code=204)


def _documents(request: Request) -> ModelDocuments:
    documents: ModelDocuments = request.app.state.model_documents
    return documents


@router.get("/{model_id}/random-effects", response_model=RandomEffects,
            responses={**NOT_MODIFIED, **problem_responses(404, 409)})
def get_random_effects(model_id: ModelIdDep, request: Request, response: Response,
                       session: SessionDep) -> Any:
    """Conditional modes (BLUPs) and conditional standard deviations per group and level."""
    row = _fitted_unless_current(request, response, session, model_id)
    if isinstance(row, Response):
        return row
    return RandomEffects(model_id=row.id, random_effects=effects.random_effects(row))


@router.get("/{model_id}/coefficients", response_model=Coefficients,
            responses={**NOT_MODIFIED, **problem_responses(404, 409)})
def get_coefficients(model_id: ModelIdDep, request: Request, response: Response,
                     session: SessionDep) -> Any:
    """Per-level coefficients: fixed effects plus conditional modes (R's coef())."""
    row = _fitted_unless_current(request, response, session, model_id)
    if isinstance(row, Response):
        return row
    return Coefficients(model_id=row.id, coefficients=effects.coefficients(row))


def _fitted_unless_current(request: Request, response: Response, session: Session,
                           model_id: str) -> ModelRow | Response:
    """The succeeded model, with its cache headers set on ``response``; or the 304 when
    the client's copy is current (then the full row is never read)."""
    fresh = freshness(request, service.model_version(session, model_id), derived=True)
    if fresh.not_modified:
        return fresh.not_modified_response()
    row = service.get_fitted_model(session, model_id)
    fresh.apply(response)
    return row


@router.get("/{model_id}/signature", response_model=Signature,
            responses=problem_responses(404, 409))
def get_signature(model_id: ModelIdDep, request: Request, session: SessionDep) -> Signature:
    """The input columns a prediction reads (types, a factor's levels, the grouping
    factors' levels with effects) and the output."""
    cache: PredictorCache | None = getattr(request.app.state, "predictor_cache", None)
    model = service.predictable_model(session, model_id, cache, get_principal(request))
    return signature(model.model_id, model.predictor)


@router.post("/{model_id}/predictions", response_model=Predictions,
             openapi_extra=_PREDICTION_BODY,
             responses={**OPENAPI_CONTENT, 202: {"model": PredictionBatch, "description": (
                 "With {\"dataset_id\"}: the batch prediction, queued; poll its Location")},
                 **problem_responses(404, 409, 413, 415, 422)})
async def predict(
    model_id: ModelIdDep,
    request: Request,
    settings: SettingsDep,
    pool: ComputeDep,
    include_random_effects: Annotated[bool, Query(
        description="For a CSV or Parquet body")] = True,
    new_levels: Annotated[NewLevels, Query(
        description="For a CSV or Parquet body")] = "population",
    interval: Annotated[IntervalKind, Query(
        description="For a CSV or Parquet body: " + INTERVAL_DESCRIPTION)] = "none",
    level: Annotated[float, Query(gt=0, lt=1, description=(
        "For a CSV or Parquet body: " + LEVEL_DESCRIPTION))] = 0.95,
    random_effects: Annotated[list[str] | None, Query(max_length=100, description=(
        "For a CSV or Parquet body (repeat it for several; random_effects= alone for "
        "none): " + RANDOM_EFFECTS_DESCRIPTION))] = None,
) -> Any:
    """Predict new rows (JSON records or columns, CSV or Parquet) from a fitted model; the
    answer is JSON, or CSV or Parquet when ``Accept`` asks for it. With ``{"dataset_id"}``
    a stored dataset is scored as a job: 202 and the batch's Location, whose result
    downloads as Parquet or CSV."""
    media = media_type(request)
    if media.endswith("+json"):
        media = "application/json"
    if media not in BODY_TYPES:
        raise unsupported(request, list(BODY_TYPES))
    answer = answer_type(request.headers.get("accept"))
    body = await read_body(request, settings.max_prediction_bytes, PREDICTION_SETTING)
    if media == "application/json" and b'"dataset_id"' in body:
        spec = prediction_request(body)
        if spec.dataset_id is not None:  # a stored dataset, scored as a job
            refuse_batch_options(spec)
            return await create_batch_response(request, model_id, spec, settings.max_attempts)
    max_rows = settings.max_prediction_rows
    cache: PredictorCache | None = getattr(request.app.state, "predictor_cache", None)
    principal = get_principal(request)
    options = (query_options(include_random_effects, new_levels, interval, level,
                             random_effects), max_rows)
    current = (cache.current(model_id, principal)
               if cache is not None and len(body) <= LOOP_PREDICTION_BYTES else None)
    if current is not None and media != PARQUET:
        # a few rows from a model in memory that nothing has changed since it was last
        # seen: the arithmetic of a fraction of a millisecond, on the event loop (a trip
        # to the threadpool would cost more than the prediction)
        shape = read_body_shape(body, media, *options)
        values = predict_rows(current.predictor, current.categorical, shape, max_rows)
    # Parquet always goes to a child: a small compressed file can decode to gigabytes
    elif len(body) <= settings.inline_prediction_bytes and media != PARQUET:
        values = await run_in_threadpool(_predict_inline, request, model_id, cache, principal,
                                         body, media, *options)
    else:  # parsing and predicting grow with the body: in a compute child
        model = await run_in_threadpool(_predictable, request, model_id, cache, principal)
        values = await pool.run("predicting", predict_body, model.state, body, media,
                                *options, gone=request.is_disconnected)
    return predictions_response(model_id, values, answer)


def query_options(include_random_effects: bool, new_levels: NewLevels, interval: IntervalKind,
                  level: float, random_effects: list[str] | None) -> PredictionOptions:
    """A CSV or Parquet body's options, from the query (``random_effects=`` alone: none)."""
    try:
        check_random_effects(include_random_effects, random_effects)
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    groups = None if random_effects is None else tuple(g for g in random_effects if g)
    return PredictionOptions(include_random_effects, new_levels, interval, level, groups)


def refuse_batch_options(spec: PredictionRequest) -> None:
    """Batch predictions write one column: intervals and a choice of grouping factors are
    for requests with the rows in the body."""
    asked = [name for name, given in (("interval", spec.interval != "none"),
                                      ("random_effects", spec.random_effects is not None))
             if given]
    if asked:
        raise InvalidInput(
            f"A batch prediction ({{\"dataset_id\"}}) takes no {' or '.join(asked)}: it "
            "scores a dataset's rows into one prediction column. Send the rows in the body "
            "(records, columns, CSV or Parquet, in parts if large) for se_fit, lower and "
            "upper or a choice of random effects.",
            errors=[{"location": "body", "field": name, "type": "value_error",
                     "detail": "not available for batch predictions"}
                    for name in asked])


def _predictable(request: Request, model_id: str, cache: PredictorCache | None,
                 principal: Principal) -> CachedModel:
    with read_unit_of_work(request) as session:
        return service.predictable_model(session, model_id, cache, principal)


def _predict_inline(request: Request, model_id: str, cache: PredictorCache | None,
                    principal: Principal, body: bytes, media: str,
                    options: PredictionOptions, max_rows: int) -> PredictionAnswer:
    """A small prediction, all on one request thread: the body's shape is checked before
    the model is read (a 422 before a 409); a cached model needs no database read."""
    shape = read_body_shape(body, media, options, max_rows)
    model = _predictable(request, model_id, cache, principal)
    return predict_rows(model.predictor, model.categorical, shape, max_rows)
