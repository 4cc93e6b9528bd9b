"""HTTP routes of /v1/models/{id}/residuals and /v1/models/{id}/plots.

The model and its dataset are read on the request threadpool (a short read-only
transaction); rebuilding the design, computing residuals and drawing run in a compute child
(``service.compute``) under its time and memory limits, stopped if the client leaves.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from service.dependencies import ComputeDep, SessionDep
from service.errors import problem_responses
from service.inspection import service
from service.inspection.schemas import ImageFormat, PlotLink, PlotList, ResidualFormat, Residuals
from service.models import service as models
from service.models.caching import NOT_MODIFIED, Freshness, freshness
from service.models.references import ModelIdDep

router = APIRouter(prefix="/v1/models", tags=["inspection"])

GroupQuery = Annotated[list[str], Query(
    description="A data column to attach and summarise residuals by (repeatable), e.g. the "
                "State of a model that does not contain it")]
PlotGroupQuery = Annotated[str | None, Query(
    description="For a least squares model: a data column to plot residuals by")]
IMAGE_TYPES = {"png": "image/png", "svg": "image/svg+xml"}

_RESIDUALS_CSV: dict[int | str, dict[str, Any]] = {200: {"content": {
    "text/csv": {"schema": {"type": "string"}, "description": "The rows as CSV"}}}}
_IMAGES: dict[int | str, dict[str, Any]] = {200: {"content": {
    media: {"schema": {"type": "string", "format": "binary"}}
    for media in IMAGE_TYPES.values()}}}


@router.get("/{model_id}/residuals", response_model=Residuals,
            responses={**_RESIDUALS_CSV, **NOT_MODIFIED, **problem_responses(404, 409, 422)})
async def get_residuals(
    model_id: ModelIdDep,
    request: Request,
    response: Response,
    session: SessionDep,
    pool: ComputeDep,
    group: GroupQuery = [],  # noqa: B006 - FastAPI copies query defaults
    format: Annotated[ResidualFormat | None, Query(
        description="json or csv; without it the Accept header decides")] = None,
) -> Any:
    """Fitted values, residuals and standardized residuals, with their summaries."""
    fresh = await _freshness(request, session, model_id)
    if fresh.not_modified:
        return fresh.not_modified_response()
    model = await run_in_threadpool(service.load, session, model_id)
    if (format or _accepts_csv(request)) == "csv":
        text = await pool.run("computing the residuals", service.residuals_csv, model, group,
                              gone=request.is_disconnected)
        return fresh.apply(Response(text, media_type="text/csv; charset=utf-8"))
    residuals = await pool.run("computing the residuals", service.residuals, model, group,
                               gone=request.is_disconnected)
    fresh.apply(response)
    return residuals


@router.get("/{model_id}/plots", response_model=PlotList,
            responses={**NOT_MODIFIED, **problem_responses(404, 409, 422)})
async def list_plots(model_id: ModelIdDep, request: Request, response: Response,
                     session: SessionDep, pool: ComputeDep,
                     group: PlotGroupQuery = None) -> Any:
    """The plots available for this model, with their PNG and SVG URLs."""
    fresh = await _freshness(request, session, model_id)
    if fresh.not_modified:
        return fresh.not_modified_response()
    fresh.apply(response)
    model = await run_in_threadpool(service.load, session, model_id)
    names = await pool.run("listing the plots", service.plot_names, model, group,
                           gone=request.is_disconnected)
    suffix = f"&group={quote(group)}" if group else ""
    base = f"/v1/models/{model.id}/plots"
    return PlotList(model_id=model.id, kind=model.kind,  # type: ignore[arg-type]
                    plots=[PlotLink(name=name, png=f"{base}/{name}?format=png{suffix}",
                                    svg=f"{base}/{name}?format=svg{suffix}")
                           for name in names])


@router.get("/{model_id}/plots/{name}", response_class=Response,
            responses={**_IMAGES, **NOT_MODIFIED, **problem_responses(404, 409, 422)})
async def get_plot(
    model_id: ModelIdDep,
    name: str,
    request: Request,
    session: SessionDep,
    pool: ComputeDep,
    group: PlotGroupQuery = None,
    format: Annotated[ImageFormat | None, Query(
        description="png or svg; without it the Accept header decides (PNG by default)")
    ] = None,
) -> Response:
    """Draw one plot of the model as PNG or SVG."""
    fmt = format or ("svg" if _prefers_svg(request) else "png")
    fresh = await _freshness(request, session, model_id)
    if fresh.not_modified:  # the plot is not drawn again to find it unchanged
        return fresh.not_modified_response()
    model = await run_in_threadpool(service.load, session, model_id)
    image = await pool.run("drawing the plot", service.render, model, name, fmt, group,
                           gone=request.is_disconnected)
    return fresh.apply(Response(image, media_type=IMAGE_TYPES[fmt]))


async def _freshness(request: Request, session: Session, model_id: str) -> Freshness:
    row = await run_in_threadpool(models.model_version, session, model_id)
    return freshness(request, row, derived=True)


def _accepts_csv(request: Request) -> str | None:
    accept = request.headers.get("accept", "")
    return "csv" if "text/csv" in accept and "application/json" not in accept else None


def _prefers_svg(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "image/svg+xml" in accept and "image/png" not in accept
