"""A bounded in-memory cache of what is derived from finished models, which never change.

Each entry keeps the tenant of the model it came from: a hit is served only to a caller
that may see that tenant's rows, exactly those the tenant-scoped read that filled the entry
would have found (``service.db.tenancy``); any other caller goes to the database and gets
its 404 there. Entries are evicted least recently used first when their total size passes
the limit; an entry larger than the whole cache is not kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

from service.auth.principal import Principal

T = TypeVar("T")


def visible_to(principal: Principal, tenant: str | None) -> bool:
    """Whether ``principal`` may see a row of ``tenant`` (as the tenancy events decide)."""
    return principal.sees_all or (principal.tenant is not None and principal.tenant == tenant)


class ImmutableCache(Generic[T]):
    """Least recently used values by model id, at most ``max_bytes`` of them (0: none).
    Thread-safe: request threads read and fill it."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[str | None, T, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, model_id: str, principal: Principal) -> T | None:
        """The cached value if ``principal`` may see the model it came from."""
        with self._lock:
            entry = self._entries.get(model_id)
            if entry is None or not visible_to(principal, entry[0]):
                return None
            self._entries.move_to_end(model_id)
            return entry[1]

    def peek(self, model_id: str) -> T | None:
        """The cached value whoever asks (for bookkeeping, never to answer a request)."""
        with self._lock:
            entry = self._entries.get(model_id)
            return None if entry is None else entry[1]

    def put(self, model_id: str, tenant: str | None, value: T, size: int) -> None:
        if size > self.max_bytes:
            return
        with self._lock:
            self._drop(model_id)
            self._entries[model_id] = (tenant, value, size)
            self._size += size
            while self._size > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def discard(self, model_id: str) -> None:
        """Forget a model (deleted)."""
        with self._lock:
            self._drop(model_id)

    def _drop(self, model_id: str) -> None:
        old = self._entries.pop(model_id, None)
        if old is not None:
            self._size -= old[2]
