"""The one place where the domain routers are joined into the API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Security
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

api_router = APIRouter()
api_router.include_router(datasets_router, **V1)
# before the models router: POST /v1/models/import is no model's path
api_router.include_router(portability_router, **V1)
api_router.include_router(models_router, **V1)
api_router.include_router(batches_router, **V1)
api_router.include_router(inspection_router, **V1)
api_router.include_router(comparisons_router, **V1)
api_router.include_router(inference_router, **V1)
api_router.include_router(registry_router, **V1)
api_router.include_router(ops_router)
