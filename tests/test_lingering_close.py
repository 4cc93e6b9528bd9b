"""A body refused before it is read gets its 413 to the client (service.ops.lingering):
the server ends its side and reads on a little instead of resetting the connection under
a client still sending, which would make the client's kernel drop the answer. A real
``mixedfit serve`` and a client that sends as httpx and requests do: it writes the body
piece by piece, reads the answer in a task of its own, and goes on sending after it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from service.ops.lingering import LINGER_BYTES
from tests.live_server import live_server

pytestmark = pytest.mark.slow

PIECE = b"x" * (1024 * 1024)
BODY_BYTES = 200 * len(PIECE)  # far over MIXEDFIT_MAX_BODY_BYTES, and over LINGER_BYTES
ATTEMPTS = 20


async def post_while_reading(base: str, chunked: bool) -> tuple[bytes, int]:
    """POST a 200 MB body to /v1/models; the answer's head (empty: none arrived) and the
    bytes sent when the connection ended."""
    address = urlsplit(base)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {BODY_BYTES}"
    writer.write(f"POST /v1/models HTTP/1.1\r\nHost: test\r\n"
                 f"Content-Type: application/json\r\n{framing}\r\n\r\n".encode())

    async def head() -> bytes:
        try:
            return await reader.readuntil(b"\r\n\r\n") + await reader.read(4096)
        except (OSError, asyncio.IncompleteReadError):
            return b""

    answer = asyncio.create_task(head())
    sent = 0
    try:
        while sent < BODY_BYTES:
            writer.write(b"%x\r\n" % len(PIECE) + PIECE + b"\r\n" if chunked else PIECE)
            await asyncio.wait_for(writer.drain(), 10)
            sent += len(PIECE)
            await asyncio.sleep(0)
    except (OSError, TimeoutError):
        pass  # reset, or no longer read: the answer (if any) has come
    finally:
        writer.close()
    return await answer, sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_the_413_reaches_a_client_still_sending(tmp_path: Path, chunked: bool) -> None:
    with live_server(f"sqlite:///{tmp_path / 'linger.db'}", tmp_path) as base:
        for _ in range(ATTEMPTS):
            answer, sent = asyncio.run(post_while_reading(base, chunked))
            assert answer.startswith(b"HTTP/1.1 413"), (answer[:200], sent)
            assert b"application/problem+json" in answer and b"MIXEDFIT_MAX_BODY_BYTES" in answer
            # and not read to its end: the server stops after LINGER_BYTES or so
            assert sent < BODY_BYTES // 2 and sent < 4 * LINGER_BYTES + 16 * len(PIECE)
