"""The server's transport joins the writes of one event-loop turn (service.ops.lingering):
an answer's head and body go out in one system call, and nothing is held past the turn,
reordered, or lost at a close. Real sockets on loopback, the event loop's own transport
under ours; the count of its writes is read by a pass-through that records them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from service.ops.lingering import COALESCE_BYTES, _LingeringTransport

Step = Callable[[_LingeringTransport], Awaitable[None]]


class _Recorded:
    """The real transport, with the sizes of the writes made on it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes: list[int] = []

    def write(self, data: bytes) -> None:
        self.writes.append(len(data))
        self.transport.write(data)

    def writelines(self, parts: tuple[bytes, ...]) -> None:
        self.writes.append(sum(map(len, parts)))
        self.transport.writelines(parts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class _NotLingering:
    """What ``close`` asks of the protocol: no refused body is being read."""

    lingering = False

    def body_unread(self) -> bool:
        return False


async def _serve(step: Step) -> tuple[list[int], list[tuple[float, bytes]]]:
    """Run ``step`` on the server's side of a new connection; what the client received
    (with when, from the connection's start) and the writes on the real transport."""
    recorded: list[_Recorded] = []
    done = asyncio.Event()

    class Server(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            real = _Recorded(transport)
            recorded.append(real)
            ours = _LingeringTransport(real, _NotLingering())  # type: ignore[arg-type]

            async def run() -> None:
                await step(ours)
                done.set()

            asyncio.get_running_loop().create_task(run())

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = loop.time()
    received: list[tuple[float, bytes]] = []
    while True:
        data = await asyncio.wait_for(reader.read(1 << 20), 10)
        if not data:
            break
        received.append((loop.time() - start, data))
    await asyncio.wait_for(done.wait(), 10)
    writer.close()
    server.close()
    return recorded[0].writes, received


def test_the_writes_of_one_turn_go_out_as_one() -> None:
    async def head_then_body(transport: _LingeringTransport) -> None:
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n")
        transport.write(b"body")
        transport.close()

    writes, received = asyncio.run(_serve(head_then_body))
    assert writes == [len(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n") + 4]
    assert b"".join(data for _, data in received).endswith(b"\r\n\r\nbody")


def test_a_head_is_not_held_past_the_turn_it_was_written_in() -> None:
    async def slow_body(transport: _LingeringTransport) -> None:
        transport.write(b"head")
        await asyncio.sleep(0.5)  # the app computes its body meanwhile
        transport.write(b"body")
        transport.close()

    writes, received = asyncio.run(_serve(slow_body))
    assert writes == [4, 4]
    assert received[0][1] == b"head" and received[0][0] < 0.4  # before the body existed
    assert b"".join(data for _, data in received) == b"headbody"


def test_a_close_or_an_end_sends_what_is_held_first() -> None:
    async def write_and_close(transport: _LingeringTransport) -> None:
        transport.write(b"last words")
        transport.close()

    async def write_and_end(transport: _LingeringTransport) -> None:
        transport.write(b"then eof")
        transport.write_eof()
        await asyncio.sleep(0)
        transport.close()

    for step, text in ((write_and_close, b"last words"), (write_and_end, b"then eof")):
        _, received = asyncio.run(_serve(step))
        assert b"".join(data for _, data in received) == text


def test_a_large_write_goes_out_at_once_after_what_is_held() -> None:
    large = bytes(range(256)) * (COALESCE_BYTES // 256 + 1)

    async def small_then_large(transport: _LingeringTransport) -> None:
        transport.write(b"head")
        transport.write(large)
        transport.write(large)  # alone and large: not held
        transport.close()

    writes, received = asyncio.run(_serve(small_then_large))
    assert writes == [4 + len(large), len(large)]
    assert b"".join(data for _, data in received) == b"head" + large + large


def test_writelines_and_the_buffer_size_count_what_is_held() -> None:
    sizes: list[int] = []

    async def held_then_lines(transport: _LingeringTransport) -> None:
        transport.write(b"head")
        sizes.append(transport.get_write_buffer_size())
        transport.writelines([b"bo", b"dy"])  # after the held head, not before it
        await asyncio.sleep(0)
        sizes.append(transport.get_write_buffer_size())
        transport.close()

    writes, received = asyncio.run(_serve(held_then_lines))
    assert sizes[0] >= 4  # the held head is not yet sent
    assert b"".join(data for _, data in received) == b"headbody"
    assert writes == [8]
