"""Compiled predictors, cached (``ImmutableCache``), so that a prediction from a model
already used does no database read and no JSON decoding.

A succeeded model never changes (its result and prediction state are written once), so a
cached predictor is never stale. An entry's size is its state's size as JSON, a fair proxy
for its arrays and dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from service.models.immutable_cache import ImmutableCache
from service.models.predicting import categorical_columns
from service.stats.predict import Predictor


@dataclass(frozen=True)
class CachedModel:
    """A succeeded model as predictions need it."""

    model_id: str
    tenant: str | None
    state: dict[str, Any]
    predictor: Predictor
    categorical: list[str]  # the data columns read as text (factors)
    size: int


def compile_model(model_id: str, tenant: str | None, state: dict[str, Any]) -> CachedModel:
    """Compile a stored prediction state (CPU grows with the model's levels: call it off
    the event loop)."""
    return CachedModel(model_id=model_id, tenant=tenant, state=state,
                       predictor=Predictor(state), categorical=categorical_columns(state),
                       size=len(orjson.dumps(state)))


class PredictorCache(ImmutableCache[CachedModel]):
    """Compiled models by id (``ImmutableCache``: tenant-checked, bounded by size)."""

    def add(self, model: CachedModel) -> None:
        self.put(model.model_id, model.tenant, model, model.size)
