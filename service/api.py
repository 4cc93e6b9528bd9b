"""The one place where the domain routers are joined into the API."""

from __future__ import annotations

from fastapi import APIRouter

from service.comparisons.endpoints import router as comparisons_router
from service.datasets.endpoints import router as datasets_router
from service.inspection.endpoints import router as inspection_router
from service.models.endpoints import router as models_router
from service.ops.endpoints import router as ops_router

api_router = APIRouter()
api_router.include_router(datasets_router)
api_router.include_router(models_router)
api_router.include_router(inspection_router)
api_router.include_router(comparisons_router)
api_router.include_router(ops_router)
