"""A short-lived cache of key lookups, so that a request with a key used a moment ago needs
no database read and no thread.

The outcome of authenticating an ``Authorization`` header (the caller's principal, or the
refusal) is kept for ``ttl_seconds``: a key created, revoked or presented for the first time
takes effect within that time on every API process (``MIXEDFIT_AUTH_CACHE_SECONDS``; 0,
the default, turns the cache off: a revocation then holds at once). Entries are keyed by
a SHA-256 of the header, never the key itself, and at most ``max_entries`` are kept, so a
flood of made-up keys cannot fill memory.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

from service.auth.keys import Refusal
from service.auth.principal import Principal

MAX_ENTRIES = 10_000


class AuthCache:
    def __init__(self, ttl_seconds: float, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, tuple[float, Principal | Refusal]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(authorization: str | None) -> bytes:
        return hashlib.sha256(b"\x00" if authorization is None
                              else b"\x01" + authorization.encode("utf-8", "replace")).digest()

    def get(self, authorization: str | None) -> Principal | Refusal | None:
        if self.ttl_seconds <= 0:
            return None
        key = self._key(authorization)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, outcome = entry
            if expires < time.monotonic():
                del self._entries[key]
                return None
            return outcome

    def put(self, authorization: str | None, outcome: Principal | Refusal) -> None:
        if self.ttl_seconds <= 0:
            return
        key = self._key(authorization)
        with self._lock:
            self._entries[key] = (time.monotonic() + self.ttl_seconds, outcome)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
