"""Compiled predictors, cached (``ImmutableCache``), so that a prediction from a model
already used does no database read and no JSON decoding.

A succeeded model never changes (its result and prediction state are written once), so a
cached predictor is never stale; but a model can be deleted, in any API process. A hit is
served without a query while the database's change token (``service.db.changes``) is the
one seen when the model was last found to exist; once it differs, the model's existence is
asked again (by primary key). An entry's size is its state's size as JSON, a fair proxy
for its arrays and dicts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import orjson

from service.auth.principal import Principal
from service.db.changes import ChangeToken, Stamp
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

    def __init__(self, max_bytes: int, changes: ChangeToken | None = None) -> None:
        super().__init__(max_bytes)
        self.changes = changes or ChangeToken()
        # the change stamp at which each model was last found to exist
        self._confirmed: dict[str, Stamp] = {}
        self._confirmed_lock = threading.Lock()

    def add(self, model: CachedModel, stamp: Stamp | None = None) -> None:
        self.put(model.model_id, model.tenant, model, model.size)
        self.confirm(model.model_id, stamp)

    def current(self, model_id: str, principal: Principal) -> CachedModel | None:
        """The cached model if ``principal`` may see it and nothing was written since it
        was last found to exist: servable without asking the database."""
        with self._confirmed_lock:
            stamp = self._confirmed.get(model_id)
        if not self.changes.unchanged_since(stamp):
            return None
        return self.get(model_id, principal)

    def confirm(self, model_id: str, stamp: Stamp | None) -> None:
        """The model was found to exist at ``stamp`` (taken before asking)."""
        with self._confirmed_lock:
            if stamp is None:
                self._confirmed.pop(model_id, None)
            else:
                self._confirmed[model_id] = stamp
            # bounded as the cache is: forget confirmations of evicted models
            if len(self._confirmed) > 2 * len(self) + 64:
                for stale in [m for m in self._confirmed if self.peek(m) is None]:
                    del self._confirmed[stale]
