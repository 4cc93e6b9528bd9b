"""A small piece of ASGI plumbing shared by the middleware that answer for the app."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


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


class ShortWay:
    """The base of a middleware that answers some requests of one route itself, with the
    route's own answer (``service.models.fast_reads``, ``fast_predictions``).

    The access line and the metrics name a request's route, which the router sets in the
    scope; a short way sets the same one, learned from the first request of its kind that
    went through the router. Until then every request goes that way."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route: Any = None

    async def to_route(self, scope: Scope, receive: Receive, send: Send, *,
                       learn: bool) -> None:
        """The request to the router; ``learn``: it is of the short way's kind."""
        await self.app(scope, receive, send)
        if learn and self.route is None:
            self.route = scope.get("route")
