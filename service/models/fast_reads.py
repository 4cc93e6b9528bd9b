"""``GET /v1/models/{id}`` (plain, or a long poll ``?wait=S``) answered without FastAPI's
routing.

Long polls arrive by the hundred at once. Each costs the event loop its routing, its
dependency solving and its parameter parsing before it starts waiting, and that, in a
burst, is what delays every other request (bench/responsive.py). This ASGI middleware sits
inside every other (authentication, rate limits, metrics, CORS, request ids all apply as
to any request) and answers itself only what is plain: a model id (not ``name@alias``,
which is resolved by the route's dependency) and no query string but ``wait`` as a plain
decimal number. It gives the route's own answer (``reading.model_answer``); anything it
does not take, and any error (a 404, say), goes to the route, which reads again and
answers, so there is one API, not two.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from service.auth.principal import STATE_KEY, Principal
from service.models.reading import model_answer
from service.ops.asgi import ShortWay

PATH = re.compile(r"/v1/models/([0-9A-Za-z_-]{1,64})")
WAIT = re.compile(rb"wait=(\d{1,9}(?:\.\d{0,9})?)")


class ModelReadFastPath(ShortWay[tuple[str, float]]):
    async def answer(self, plain: tuple[str, float], scope: Scope, receive: Receive,
                     send: Send) -> None:
        model_id, wait = plain
        try:
            response = await model_answer(Request(scope, receive), model_id, wait)
        except Exception:  # the route reads it again and gives its problem document
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        await response(scope, receive, send)

    def plain_request_of(self, scope: Scope) -> tuple[str, float] | None:
        if (scope["type"] != "http" or scope["method"] != "GET"
                or (match := PATH.fullmatch(scope["path"])) is None
                or not isinstance(scope.get("state", {}).get(STATE_KEY), Principal)):
            return None
        query: bytes = scope.get("query_string", b"")
        if not query:
            return match.group(1), 0.0
        wait = WAIT.fullmatch(query)
        return None if wait is None else (match.group(1), float(wait.group(1)))
