"""The one place where the domain routers are joined into the API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Security
from fastapi.security import HTTPBearer

from service.batches.endpoints import router as batches_router
from service.comparisons.endpoints import router as comparisons_router
from service.datasets.endpoints import router as datasets_router
from service.errors import problem_responses
from service.inference.endpoints import router as inference_router
from service.inspection.endpoints import router as inspection_router
from service.models.endpoints import router as models_router
from service.ops.endpoints import router as ops_router
from service.portability.endpoints import router as portability_router
from service.registry.endpoints import router as registry_router

# The /v1 routes declare the bearer scheme, so /docs has an Authorize button that sends the
# key. The check itself is service.auth.middleware's (it runs before routing); this
# dependency only documents it and never refuses a request.
bearer_scheme = HTTPBearer(auto_error=False, description=(
    "An API key (`mixedfit keys create --tenant NAME`), sent as 'Authorization: Bearer "
    "<key>'. Needed by every /v1 route once any key exists; while none does, the API is open."))
V1: dict[str, Any] = {"dependencies": [Security(bearer_scheme)],
                      "responses": problem_responses(401)}

# (router, options) in the order their routes are matched. Each is included in the app
# itself: FastAPI (0.165) matches a request against an included router's routes twice
# (whether it matches, then which route), at every level of nesting, so one more level
# (these joined in a router of their own first) doubled the routing of every request:
# 73 route matches and a quarter of a millisecond for /healthz.
ROUTERS: list[tuple[APIRouter, dict[str, Any]]] = [
    # first: three fixed paths that load balancers and Prometheus ask for all the time
    (ops_router, {}),
    (datasets_router, V1),
    # before the models router: POST /v1/models/import is no model's path
    (portability_router, V1),
    (models_router, V1),
    (batches_router, V1),
    (inspection_router, V1),
    (comparisons_router, V1),
    (inference_router, V1),
    (registry_router, V1),
]


def include_api(app: FastAPI) -> None:
    """Add every route of the API to ``app``."""
    for router, options in ROUTERS:
        app.include_router(router, **options)
