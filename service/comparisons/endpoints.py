"""HTTP routes of /v1/comparisons."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from service.comparisons import service
from service.comparisons.schemas import Comparison, ComparisonCreate, ComparisonList
from service.dependencies import SessionDep, SettingsDep, WriteSessionDep
from service.errors import problem_responses
from service.pagination import PageQuery

router = APIRouter(prefix="/v1/comparisons", tags=["comparisons"])


@router.post("", status_code=202, response_model=Comparison,
             responses=problem_responses(404, 409, 413, 422))
def create_comparison(spec: ComparisonCreate, response: Response, session: SessionDep,
                      settings: SettingsDep) -> Comparison:
    """Check the models and queue ML refits of REML mixed models (202; poll the Location)."""
    row = service.create_comparison(session, spec, settings.max_attempts)
    response.headers["Location"] = f"/v1/comparisons/{row.id}"
    return Comparison.from_row(row)


@router.get("/{comparison_id}", response_model=Comparison,
            responses=problem_responses(404, 422))
async def get_comparison(
    comparison_id: str,
    # a comparison whose fits have finished is settled (its table stored) when read
    session: WriteSessionDep,
    settings: SettingsDep,
    wait: Annotated[float, Query(ge=0, description=(
        "Seconds to wait for the member fits to finish before answering (long poll); "
        "capped at the server's MIXEDFIT_MAX_WAIT_SECONDS"))] = 0,
) -> Comparison:
    """Read a comparison; once every member fit has finished, its anova table (F or χ²)."""
    row, status = await service.wait_for_comparison(
        session, comparison_id, min(wait, settings.max_wait_seconds))
    return Comparison.from_row(row, status)


@router.get("", response_model=ComparisonList, responses=problem_responses(422))
def list_comparisons(session: SessionDep,
                     page: Annotated[PageQuery, Query()]) -> ComparisonList:
    """List comparisons, newest first (summaries: read one by its id for its table)."""
    rows, total = service.list_comparisons(session, page.limit, page.offset)
    return ComparisonList(items=[Comparison.from_row(r, with_result=False) for r in rows],
                          total=total, limit=page.limit, offset=page.offset)


@router.delete("/{comparison_id}", status_code=204, responses=problem_responses(404))
def delete_comparison(comparison_id: str, session: SessionDep) -> Response:
    """Delete a comparison (its ML refits stay: they are models of their own)."""
    service.delete_comparison(session, comparison_id)
    return Response(status_code=204)
