"""uvicorn's HTTP protocol with a lingering close, as nginx's ``lingering_close``.

A body over its limit is refused with a 413 before it is read (``service.ops.bodylimit``),
and the answer says ``Connection: close``. uvicorn then closes the socket at once, while
the client is still sending the body. Closing a socket with unread input makes the kernel
send a reset instead of an orderly end, and a reset makes the client's kernel drop what it
had received and not yet handed to the client: the 413 itself, often. (300 MB bodies to
``POST /v1/models`` in bench/responsive.py: 14 % of those with a ``Content-Length`` and
75 % of the chunked ones got no answer.)

So, when the answer is complete but the request's body is not, the protocol ends only its
own side (FIN, after the answer), goes on reading and discarding what the client sends
(never parsed again: no further request is taken from it), and closes once the client
has stopped sending, after ``LINGER_SECONDS`` or after ``LINGER_BYTES``, whichever comes
first (a client that goes on sending is not read for ever: over loopback 300 MB pass in a
quarter of a second). A client that reads while it sends (httpx, requests, curl) then has
the 413 in hand before the connection ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# how long and how much of a refused body is read and thrown away at most (nginx's
# lingering_time is 30 s; a client that has the answer stops sending well before)
LINGER_SECONDS = 2.0
LINGER_BYTES = 16 * 1024 * 1024
# writes up to this size in one turn of the event loop are joined into one
COALESCE_BYTES = 64 * 1024


class LingeringHttpToolsProtocol(HttpToolsProtocol):
    lingering = False
    discarded = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_LingeringTransport(transport, self))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if not self.lingering:
            super().data_received(data)
            return
        # the rest of a refused body, thrown away
        self.discarded += len(data)
        if self.discarded > LINGER_BYTES:
            self.transport.close()

    def body_unread(self) -> bool:
        """Whether the answer is complete while the request's body is still arriving."""
        cycle = self.cycle
        return (cycle is not None and cycle.response_complete and cycle.more_body
                and not cycle.disconnected)


class _LingeringTransport:
    """The connection's transport, whose ``close`` lingers while a body is unread, and
    whose small writes are held until the event loop's next turn (``write``)."""

    def __init__(self, transport: asyncio.Transport,
                 protocol: LingeringHttpToolsProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        """Write ``data``, joined to the writes made in the same turn of the event loop.

        uvicorn writes an answer's head when the app sends it and its body when the app
        sends that, which for a small answer is in the same turn: two system calls and
        two TCP segments, each of which the client's side reads and acknowledges. Held
        until the loop's next turn (never longer: a head the app sends before it computes
        a long body goes out before that), the two are one write. A large write goes out
        at once, after what is held."""
        held = self._held
        if held is None:
            if len(data) > COALESCE_BYTES:
                self._transport.write(data)
                return
            self._held = data
            asyncio.get_running_loop().call_soon(self._flush)
            return
        self._held = None
        if len(held) + len(data) > COALESCE_BYTES:
            self._transport.writelines((held, data))
        else:
            self._transport.write(held + data)

    def writelines(self, chunks: Iterable[bytes]) -> None:
        """As ``write``: after what is held, never before it."""
        self.write(b"".join(chunks))

    def get_write_buffer_size(self) -> int:
        """The bytes not yet sent, those held here included."""
        held = len(self._held) if self._held is not None else 0
        return self._transport.get_write_buffer_size() + held

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def close(self) -> None:
        self._flush()  # what the protocol wrote before it closed goes first
        transport, protocol = self._transport, self._protocol
        if (protocol.lingering or transport.is_closing() or not protocol.body_unread()
                or not transport.can_write_eof()):
            transport.close()
            return
        protocol.lingering = True
        transport.write_eof()  # the answer, then FIN: the client sees the end of it
        transport.resume_reading()  # flow control may have paused reading the body
        asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
