"""Liveness, readiness and metrics routes (unversioned: they serve operators, not clients)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import Engine

from service.errors import DatabaseNotMigrated, DatabaseUnavailable, problem_responses

router = APIRouter(tags=["operations"])


class Status(BaseModel):
    status: str


@router.get("/healthz", response_model=Status)
async def healthz() -> Status:
    """Liveness: the process answers."""
    # async: answered on the event loop, so a busy request threadpool does not delay it
    return Status(status="ok")


@router.get("/readyz", response_model=Status, responses=problem_responses(503))
def readyz(request: Request) -> Status:
    """Readiness: the database answers and its schema is at the newest migration."""
    from service.db.migrate import schema_problem

    engine: Engine = request.app.state.engine
    try:
        problem = schema_problem(engine)
    except Exception as exc:
        raise DatabaseUnavailable(
            f"The database cannot be reached ({type(exc).__name__}).") from None
    if problem is not None:
        raise DatabaseNotMigrated(problem)
    return Status(status="ready")


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus metrics"}})
def metrics(request: Request) -> Response:
    """Prometheus metrics in the text exposition format."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
