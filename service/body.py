"""Reading request bodies under a size limit, for the endpoints that take raw uploads.

The limit is enforced twice: from ``Content-Length`` before a byte is read, and while the
body streams in (chunked uploads have no length), stopping at the first chunk past it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive

from service.errors import ClientClosedRequest, PayloadTooLarge, UnsupportedMediaType

Message = dict[str, Any]


UPLOAD_SETTING = "MIXEDFIT_MAX_UPLOAD_BYTES"


def too_large(limit: int, setting: str = UPLOAD_SETTING) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes "
                           f"({setting}).", setting=setting, limit=limit, limit_bytes=limit)


def media_type(request: Request) -> str:
    """The request's media type without parameters, lower case ('' when absent)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def check_declared_length(request: Request, limit: int, setting: str = UPLOAD_SETTING
                          ) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit, setting)


async def read_body(request: Request, limit: int, setting: str = UPLOAD_SETTING) -> bytes:
    """The whole body, refusing with 413 as soon as it is known to exceed ``limit``
    (the value of the setting named ``setting``)."""
    check_declared_length(request, limit, setting)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit, setting)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientClosedRequest("The client closed the connection before the request "
                                  "body had been sent.") from None
    return b"".join(chunks)


@dataclass(frozen=True)
class Body:
    """A request body read under its limit: in memory when small (``data``), else spooled
    to a temporary file (``path``, which the caller removes with ``discard``)."""

    data: bytes
    path: str | None = None
    size: int = 0

    def discard(self) -> None:
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


async def read_body_spooled(request: Request, limit: int, memory_bytes: int,
                            setting: str = UPLOAD_SETTING) -> Body:
    """As ``read_body``, but once the body passes ``memory_bytes`` its chunks go to a
    temporary file as they arrive: a large upload is never joined into one object in this
    process (a copy of hundreds of MB, holding the GIL, would stall every other request),
    and only its path goes to the compute child that reads it."""
    check_declared_length(request, limit, setting)
    chunks: list[bytes] = []
    size = 0
    spool: Any = None
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit, setting)
            if spool is None and size > memory_bytes:
                spool = tempfile.NamedTemporaryFile(prefix="mixedfit-upload-", delete=False)
                spool.writelines(chunks)
                chunks = []
            if spool is not None:
                spool.write(chunk)  # to the page cache: microseconds per chunk
            else:
                chunks.append(chunk)
    except ClientDisconnect:
        if spool is not None:
            spool.close()
            Body(b"", spool.name).discard()
        raise ClientClosedRequest("The client closed the connection before the request "
                                  "body had been sent.") from None
    except BaseException:
        if spool is not None:
            spool.close()
            Body(b"", spool.name).discard()
        raise
    if spool is None:
        return Body(b"".join(chunks), None, size)
    spool.close()
    return Body(b"", spool.name, size)


def replayed_receive(body: bytes, then: Receive | None = None) -> Receive:
    """An ASGI ``receive`` that hands over ``body`` (already read) once, then passes on to
    ``then`` (the connection's own ``receive``: whether the client disconnects), or without
    it says the client has gone."""
    sent = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal sent
        if sent:
            if then is not None:
                return await then()
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def replay(request: Request, body: bytes) -> Request:
    """A request over the same scope whose body is ``body`` (already read and size-checked)."""
    return Request(request.scope, receive=replayed_receive(body, then=request.receive))


def unsupported(request: Request, accepted: list[str]) -> UnsupportedMediaType:
    declared = request.headers.get("content-type")
    media = media_type(request)
    shown = media or ("no Content-Type header" if declared is None
                      else f"unreadable Content-Type {declared[:100]!r}")
    return UnsupportedMediaType(f"Cannot read a body of {shown}; send one of: "
                                + ", ".join(accepted) + ".", accepted=accepted)
