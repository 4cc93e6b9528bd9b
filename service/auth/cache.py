"""A cache of key lookups, so that a request with a key used a moment ago needs no database
read and no thread.

The outcome of authenticating an ``Authorization`` header (the caller's principal, or the
refusal) is kept while the database's change token (``service.db.changes``) is the one
read before the lookup: any write to the keys (on SQLite: any commit at all) makes the
next request look again, so a revocation holds at once (on PostgreSQL: once this process
has heard its notification, a millisecond or so after the commit). Where no token can be had, an
outcome is kept for ``ttl_seconds`` (``MIXEDFIT_AUTH_CACHE_SECONDS``; 0, the default:
not kept). Entries are keyed by a SHA-256 of the header, never the key itself, and at most
``max_entries`` are kept, so a flood of made-up keys cannot fill memory.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

from service.auth.keys import Refusal
from service.auth.principal import Principal
from service.db.changes import ChangeToken, Stamp

MAX_ENTRIES = 10_000


# the key of requests without an Authorization header (every request, with no keys)
_NO_HEADER_KEY = hashlib.sha256(b"\x00").digest()


class AuthCache:
    def __init__(self, ttl_seconds: float, max_entries: int = MAX_ENTRIES,
                 changes: ChangeToken | None = None) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.changes = changes or ChangeToken()
        self._entries: OrderedDict[bytes, tuple[float, Stamp | None, Principal | Refusal]]
        self._entries = OrderedDict()
        self._lock = threading.Lock()

    def stamp(self) -> Stamp | None:
        """The change stamp to ``put`` with an outcome: taken before the lookup."""
        return self.changes.stamp()

    @staticmethod
    def _key(authorization: str | None) -> bytes:
        if authorization is None:
            return _NO_HEADER_KEY
        return hashlib.sha256(b"\x01" + authorization.encode("utf-8", "replace")).digest()

    def get(self, authorization: str | None) -> Principal | Refusal | None:
        if not self._entries:
            return None
        key = self._key(authorization)
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        expires, stamp, outcome = entry
        if self.changes.unchanged_since(stamp):
            return outcome
        if expires < time.monotonic():
            with self._lock:
                self._entries.pop(key, None)
            return None
        return outcome

    def put(self, authorization: str | None, outcome: Principal | Refusal,
            stamp: Stamp | None = None) -> None:
        if self.ttl_seconds <= 0 and stamp is None:
            return
        key = self._key(authorization)
        with self._lock:
            self._entries[key] = (time.monotonic() + self.ttl_seconds, stamp, outcome)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
