"""Every request body is read under a size limit, before any handler or middleware that
reads it (idempotency, FastAPI's JSON parsing, the upload readers) gets a byte past it.

The limit is per route: uploads (``MIXEDFIT_MAX_UPLOAD_BYTES``), prediction bodies
(``MIXEDFIT_MAX_PREDICTION_BYTES``) and every other body (``MIXEDFIT_MAX_BODY_BYTES``:
model and comparison specs are small JSON documents). A declared ``Content-Length`` past
the limit is answered 413 at once, nothing read; a body without one (chunked) is counted
as it streams in, and reading stops at the first chunk past the limit with the same 413.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.body import too_large
from service.errors import PayloadTooLarge, service_error_response
from service.ops.asgi import WatchedSend
from service.ops.routes import name_route

_PREDICTIONS = re.compile(r"^/v1/models/[^/]+/predictions/?$")
_UPLOADS = re.compile(r"^/v1/datasets/?$")
# an exported model is a file like an upload (its prediction state grows with the levels)
_IMPORTS = re.compile(r"^/v1/models/import/?$")


@dataclass(frozen=True)
class BodyLimits:
    """The byte limits of request bodies, by the route they are sent to."""

    upload_bytes: int
    prediction_bytes: int
    other_bytes: int

    def of(self, method: str, path: str) -> tuple[int, str]:
        """The limit on the body of ``method path`` and the setting that holds it."""
        if method == "POST" and (_UPLOADS.match(path) or _IMPORTS.match(path)):
            return self.upload_bytes, "MIXEDFIT_MAX_UPLOAD_BYTES"
        if method == "POST" and _PREDICTIONS.match(path):
            return self.prediction_bytes, "MIXEDFIT_MAX_PREDICTION_BYTES"
        return self.other_bytes, "MIXEDFIT_MAX_BODY_BYTES"


class BodyTooLarge(PayloadTooLarge):
    """Raised by the counting ``receive`` when a streamed body passes its limit."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self.limits.of(scope["method"], scope["path"])
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, too_large(limit, setting))
            return
        size = 0

        async def counting() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    error = too_large(limit, setting)
                    raise BodyTooLarge(error.detail, **error.extensions)
            return message

        watched = WatchedSend(send)
        try:
            await self.app(scope, counting, watched)
        except BodyTooLarge as error:
            # raised where no handler turned it into an answer (a middleware reading the
            # body); once an answer has started, there is nothing left to say
            if watched.started:
                raise
            await self._refuse(scope, receive, send, error)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send,
                      error: PayloadTooLarge) -> None:
        name_route(scope)
        response = service_error_response(Request(scope), error)
        # the client may still be sending: say that this connection ends with the answer
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
