"""A bounded in-memory cache of compiled predictors, so that a prediction from a model
already used does no database read and no JSON decoding.

A succeeded model never changes (its result and prediction state are written once), so a
cached predictor is never stale. Each entry keeps the model's tenant: a hit is served only
to a caller that may see that tenant's rows, exactly those the tenant-scoped read that
filled the entry would have found (``service.db.tenancy``); any other caller goes to the
database and gets its 404 there. Entries are evicted least recently used first when their
total size (the state's size as JSON, a fair proxy for its arrays and dicts) passes the
limit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson

from service.auth.principal import Principal
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

    def visible_to(self, principal: Principal) -> bool:
        return principal.sees_all or (principal.tenant is not None
                                      and principal.tenant == self.tenant)


def compile_model(model_id: str, tenant: str | None, state: dict[str, Any]) -> CachedModel:
    """Compile a stored prediction state (CPU grows with the model's levels: call it off
    the event loop)."""
    return CachedModel(model_id=model_id, tenant=tenant, state=state,
                       predictor=Predictor(state), categorical=categorical_columns(state),
                       size=len(orjson.dumps(state)))


class PredictorCache:
    """Least recently used compiled models, at most ``max_bytes`` of them (0: no cache).
    Thread-safe: request threads read and fill it."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, CachedModel] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, model_id: str, principal: Principal) -> CachedModel | None:
        """The cached model if ``principal`` may see it."""
        with self._lock:
            entry = self._entries.get(model_id)
            if entry is None or not entry.visible_to(principal):
                self.misses += 1
                return None
            self._entries.move_to_end(model_id)
            self.hits += 1
            return entry

    def put(self, entry: CachedModel) -> None:
        if entry.size > self.max_bytes:
            return  # larger than the whole cache: not kept
        with self._lock:
            old = self._entries.pop(entry.model_id, None)
            if old is not None:
                self._size -= old.size
            self._entries[entry.model_id] = entry
            self._size += entry.size
            while self._size > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._size -= evicted.size

    def discard(self, model_id: str) -> None:
        """Forget a model (deleted)."""
        with self._lock:
            old = self._entries.pop(model_id, None)
            if old is not None:
                self._size -= old.size
