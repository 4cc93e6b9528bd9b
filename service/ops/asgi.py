"""A small piece of ASGI plumbing shared by the middleware that answer for the app."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# what a short way has found out about a request it can answer
Plain = TypeVar("Plain")


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


class ShortWay(Generic[Plain]):
    """The base of a middleware that answers some requests of one route itself, with the
    route's own answer (``service.models.fast_reads``, ``fast_predictions``).

    ``plain_request_of`` says whether a request is of the short way's kind (and what it
    needs to answer it), ``answer`` answers it. The access line and the metrics name a
    request's route, which the router sets in the scope; a short way sets the same one,
    learned from the first request of its kind that went through the router. Until then
    every request goes that way."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route: Any = None

    def plain_request_of(self, scope: Scope) -> Plain | None:
        raise NotImplementedError

    async def answer(self, plain: Plain, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        plain = self.plain_request_of(scope)
        if plain is not None and self.route is not None:
            await self.answer(plain, scope, receive, send)
            return
        await self.app(scope, receive, send)
        if plain is not None and self.route is None:
            self.route = scope.get("route")
