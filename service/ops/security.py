"""Browser-facing protections: security headers, CORS, and refusing cross-site writes.

- Every response has ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``
  (an API has no links to follow: no page of it needs to tell another where the reader came
  from) and a Content-Security-Policy: for the API's answers one that lets nothing load or
  run (inline styles only, which an SVG plot opened on its own needs); the offline /docs
  page gets one allowing this server's Swagger UI assets and the page's own inline script,
  by its hash, and nothing else (``docs_csp``).
- CORS follows ``MIXEDFIT_CORS_ORIGINS`` (Starlette's CORSMiddleware): the methods and
  headers the API uses, for those origins only; no origins, no cross-origin access.
- A browser may still *send* a cross-site POST or DELETE that needs no preflight (a form, a
  ``fetch(..., {mode: "no-cors"})``): CORS only keeps the page from reading the answer.
  ``CrossSiteWriteGuard`` refuses such a request (403 problem) before it reaches a route
  when its ``Origin`` is neither this server nor an allowed origin, so a page on another
  site cannot upload, fit or delete through a user's browser, with or without API keys.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Collection

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import ServiceError, service_error_response

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# JSON, CSV, PNG and SVG answers: nothing may load or run; an SVG opened on its own keeps
# its inline styles; no page may frame them
DEFAULT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")

# what the API uses: the methods of its routes and the request headers a client sends
CORS_METHODS = ("GET", "POST", "DELETE")
CORS_REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID")
CORS_EXPOSED_HEADERS = ("X-Request-ID", "Location", "Retry-After", "Idempotent-Replayed",
                        "WWW-Authenticate")
CORS_MAX_AGE_SECONDS = 600
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_csp(html: str) -> str:
    """The policy of the docs page ``html``: scripts, styles, images and the OpenAPI
    document from this server, plus the page's inline scripts by their SHA-256."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html))
    return (f"default-src 'none'; script-src 'self' {hashes}; style-src 'self'; "
            "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'none'")


def add_cors_middleware(app: Starlette, origins: Collection[str]) -> None:
    """CORS for these allowed origins (credentials are never allowed: the API
    authenticates by bearer key, not by cookie)."""
    app.add_middleware(CORSMiddleware, allow_origins=list(origins),
                       allow_methods=list(CORS_METHODS),
                       allow_headers=list(CORS_REQUEST_HEADERS),
                       expose_headers=list(CORS_EXPOSED_HEADERS), allow_credentials=False,
                       max_age=CORS_MAX_AGE_SECONDS)


class CrossSiteWriteRefused(ServiceError):
    status = 403
    slug = "cross-site-request-refused"
    title = "Cross-site request refused"


def same_origin(origin: str, host: str | None) -> bool:
    """Whether ``origin`` (``scheme://host[:port]``) names the server the request reached."""
    _, separator, netloc = origin.partition("://")
    return bool(separator) and host is not None and netloc.lower() == host.lower()


class CrossSiteWriteGuard:
    """Refuses a state-changing request that a page on a disallowed origin sent."""

    def __init__(self, app: ASGIApp, allowed_origins: Collection[str]) -> None:
        self.app = app
        self.allowed = frozenset(allowed_origins)

    def refused(self, scope: Scope) -> str | None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            return None
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None or origin in self.allowed or "*" in self.allowed:
            return None  # not from a browser page, or from one the deployment allows
        if same_origin(origin, headers.get("host")):
            return None  # this server's own pages (/docs)
        return origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = self.refused(scope)
        if origin is None:
            await self.app(scope, receive, send)
            return
        error = CrossSiteWriteRefused(
            f"A page on {origin} may not send {scope['method']} requests to this API: that "
            "origin is not in MIXEDFIT_CORS_ORIGINS.", origin=origin)
        await service_error_response(Request(scope), error)(scope, receive, send)
