"""The HTTP edge: request ids, the access line, security headers, and the last-resort 500.

``RequestContextMiddleware`` is the outermost middleware: it takes the client's
``X-Request-ID`` when it is valid (1 to 128 visible ASCII characters) or makes one (32
hex digits: a random prefix per process and a counter), binds it for every log line of the
request (:mod:`service.context`), returns it and the security headers on every response,
including CORS preflights, and writes one access line per request. It never answers by
itself: CORS sits just inside it, so every answer of the app (401s, 4xx problems, 500s)
passes through CORS.

``UnhandledErrorMiddleware`` sits inside CORS and turns an exception that nothing handled
into the app's 500 problem document, so that answer too has the request id, the security
headers and, for an allowed origin, CORS headers (Starlette's own handler of last resort
runs outside every middleware).
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections.abc import Iterable
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.context import LogContext, bound, valid_request_id
from service.ops.asgi import WatchedSend
from service.ops.security import DEFAULT_CSP, SECURITY_HEADERS

REQUEST_ID_HEADER = "X-Request-ID"
access_log = logging.getLogger("mixedfit.access")
# probes and scrapes, every few seconds: their access lines are DEBUG
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


# a new request id: this process's random 64 bits, then a count (as unique as a uuid4 across
# processes and machines, without the system call for 16 random bytes on every request)
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNT = itertools.count(secrets.randbits(32))


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNT) & 0xFFFFFFFFFFFFFFFF:016x}"


def request_id_of(scope: Scope) -> str:
    """The client's request id when it is acceptable, else a new one."""
    offered = Headers(scope=scope).get(REQUEST_ID_HEADER)
    return offered if offered is not None and valid_request_id(offered) else new_request_id()


# the headers this edge sets on every answer, encoded once: the security headers, and a
# Content-Security-Policy unless the answer has its own (/docs); no `server` header (no name
# or version of the server) and the request id are replaced too
_EDGE_HEADERS = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                 for name, value in SECURITY_HEADERS.items()]
_CSP = (b"content-security-policy", DEFAULT_CSP.encode("latin-1"))
_REPLACED = frozenset({b"x-request-id", b"server", *(name for name, _ in _EDGE_HEADERS)})


def _edge_headers(headers: Iterable[tuple[bytes, bytes]],
                  request_id: str) -> list[tuple[bytes, bytes]]:
    """An answer's raw headers with the edge's: one pass over them, as ``MutableHeaders``
    would leave them (a name set replaces every header of that name), without its scan of
    the list for each name."""
    kept = [pair for pair in headers if pair[0] not in _REPLACED]
    kept.append((b"x-request-id", request_id.encode("latin-1")))
    kept.extend(_EDGE_HEADERS)
    if not any(name == _CSP[0] for name, _ in kept):
        kept.append(_CSP)
    return kept


class RequestContextMiddleware:
    """Request id, log context, security headers and the access line of every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        start = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = _edge_headers(message.get("headers", ()), request_id)
            await send(message)

        with bound(LogContext(request_id=request_id, state=state, method=scope["method"])):
            try:
                await self.app(scope, receive, send_with_headers)
            finally:
                self._access_line(scope, status, time.perf_counter() - start)

    @staticmethod
    def _access_line(scope: Scope, status: int, seconds: float) -> None:
        path: str = scope.get("path", "")
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        level = logging.DEBUG if path in QUIET_PATHS else logging.INFO
        duration_ms = round(seconds * 1000, 1)
        access_log.log(level, "%s %s %d %.1f ms", scope["method"], path, status, duration_ms,
                       extra={"route": route, "path": path, "status": status,
                              "duration_ms": duration_ms})


class UnhandledErrorMiddleware:
    """An exception no handler took becomes the app's 500 problem, sent from here (inside
    CORS and the request context) instead of from Starlette's outermost handler."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watched = WatchedSend(send)
        try:
            await self.app(scope, receive, watched)
        except Exception as error:
            if watched.started:  # too late for a problem document: the server closes the connection
                raise
            from service.errors import unexpected_error_response

            response = unexpected_error_response(Request(scope), error)
            await response(scope, receive, send)
