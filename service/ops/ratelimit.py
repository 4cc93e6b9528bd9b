"""A per-tenant request rate limit (the ``limits`` library, moving window).

``MIXEDFIT_RATE_LIMIT`` is the limit in ``limits``' notation (``600/minute``, several joined
by ``;``); empty or ``none`` turns it off, the default. Requests are counted per tenant (the
principal the auth middleware, outside this one, put in the scope), per API key for a key
without a tenant, and per client address in open mode. A request over the limit is answered
429 ``rate-limited`` with ``Retry-After`` (seconds until the window has room again) and
never reaches the app. Liveness, readiness and metrics are never limited.

The counters live in ``MIXEDFIT_RATE_LIMIT_STORAGE``: ``memory://`` counts in this process
(embedded mode, a single API process); ``redis://host:6379`` shares them between every API
process. A storage that cannot be reached lets requests through, with a warning in the log
at most once a minute: the limit protects the service, it must not take it down.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from service.auth.principal import principal_of
from service.errors import ServiceError, problem_responses, service_error_response
from service.ops.routes import name_route

logger = logging.getLogger("mixedfit.ratelimit")

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
OFF = frozenset({"", "none", "off"})
WARNING_INTERVAL_SECONDS = 60.0


class RateLimited(ServiceError):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"


def parse_rate_limit(text: str) -> list[RateLimitItem]:
    """The limits of a MIXEDFIT_RATE_LIMIT value (none when it is off); ValueError if bad."""
    if text.strip().lower() in OFF:
        return []
    try:
        return list(parse_many(text))
    except ValueError as error:
        raise ValueError(f"MIXEDFIT_RATE_LIMIT={text!r} is not a rate limit such as "
                         f"'600/minute': {error}") from None


def client_key(scope: Scope) -> str:
    """Whose requests these are: the tenant, else the API key, else the client address."""
    principal = principal_of(scope)
    if principal is not None and principal.tenant is not None:
        return f"tenant:{principal.tenant}"
    if principal is not None and principal.key_id is not None:
        return f"key:{principal.key_id}"
    client = scope.get("client")
    return f"address:{client[0] if client else 'unknown'}"


class RateLimiter:
    """The configured limits over one storage."""

    def __init__(self, items: list[RateLimitItem], storage_uri: str) -> None:
        self.items = items
        storage = storage_from_string(storage_uri)
        if not isinstance(storage, Storage):  # an async+ scheme
            raise ValueError(f"MIXEDFIT_RATE_LIMIT_STORAGE={storage_uri!r}: use a storage "
                             "such as memory:// or redis://host:6379, without async+")
        self.storage = storage
        self.strategy = MovingWindowRateLimiter(self.storage)
        self.in_process = isinstance(self.storage, MemoryStorage)
        self._warned_at: float | None = None

    def retry_after(self, who: str) -> int | None:
        """Count one request of ``who``: None if allowed, else seconds until it would be."""
        for item in self.items:
            if not self.strategy.hit(item, who):
                reset = self.strategy.get_window_stats(item, who).reset_time
                return max(1, math.ceil(reset - time.time()))
        return None

    def warn_unavailable(self) -> None:
        now = time.monotonic()
        if self._warned_at is None or now - self._warned_at >= WARNING_INTERVAL_SECONDS:
            self._warned_at = now
            logger.warning("rate limit storage unavailable; requests are not limited",
                           exc_info=True)


class RateLimitMiddleware:
    """Answers 429 with Retry-After to a caller over the rate limit."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        who = client_key(scope)
        try:
            if self.limiter.in_process:
                retry_after = self.limiter.retry_after(who)
            else:  # a network round trip: not on the event loop
                retry_after = await run_in_threadpool(self.limiter.retry_after, who)
        except Exception:
            self.limiter.warn_unavailable()
            retry_after = None
        if retry_after is None:
            await self.app(scope, receive, send)
            return
        limits = "; ".join(str(item) for item in self.limiter.items)
        error = RateLimited(f"Too many requests ({limits}); retry in {retry_after} s.")
        name_route(scope)
        error.retry_after_seconds = retry_after
        await service_error_response(Request(scope), error)(scope, receive, send)


def document_rate_limit(schema: dict[str, Any]) -> None:
    """Add the 429 problem to every operation the rate limit applies to."""
    for path, operations in schema.get("paths", {}).items():
        if path in EXEMPT_PATHS:
            continue
        for operation in operations.values():
            operation.setdefault("responses", {}).setdefault("429", problem_responses(429)[429])
