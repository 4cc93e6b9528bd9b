"""A small piece of ASGI plumbing shared by the middleware that answer for the app."""

from __future__ import annotations

from starlette.types import Message, Send


class WatchedSend:
    """``send`` that remembers whether the answer has started: a middleware that catches an
    error may send a problem document only while it has not."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)
