"""The upload size limit stops reading a chunked body at the first chunk past the limit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import Request

from service.body import read_body
from service.errors import PayloadTooLarge


def _request(chunks: list[bytes], received: list[int], headers: list[tuple[bytes, bytes]]
             ) -> Request:
    async def receive() -> dict[str, Any]:
        index = len(received)
        received.append(index)
        return {"type": "http.request", "body": chunks[index],
                "more_body": index < len(chunks) - 1}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers,
             "query_string": b""}
    return Request(scope, receive=receive)


def test_reading_stops_as_soon_as_the_limit_is_passed() -> None:
    chunks = [b"x" * 100] * 50
    received: list[int] = []
    with pytest.raises(PayloadTooLarge):
        asyncio.run(read_body(_request(chunks, received, []), limit=250))
    assert len(received) == 3  # 300 bytes read of 5000: the rest is never asked for


def test_declared_length_over_the_limit_reads_nothing() -> None:
    received: list[int] = []
    request = _request([b"x" * 10], received, [(b"content-length", b"5000")])
    with pytest.raises(PayloadTooLarge):
        asyncio.run(read_body(request, limit=250))
    assert received == []


def test_body_at_the_limit_is_accepted() -> None:
    received: list[int] = []
    body = asyncio.run(read_body(_request([b"ab", b"cd"], received, []), limit=4))
    assert body == b"abcd"
