"""Small JSON predictions from a model in memory, answered without FastAPI's routing.

A one-row prediction's own work is a fraction of a millisecond; FastAPI's routing,
dependency solving and parameter parsing around it cost more than that. This ASGI
middleware sits inside every other (authentication, rate limits, body limits,
idempotency, metrics, CORS, request ids all apply as to any request) and answers
``POST /v1/models/{id}/predictions`` itself only when everything is plain: a model id (not
``name@alias``), no query string, a JSON body of at most ``max_bytes``, and the model
compiled in the predictor cache and current (nothing written since it was last seen).
Anything else, and any body it does not predict (a batch's ``dataset_id``, an error of any
kind), goes to the route with the body replayed, so the route's answers, errors included,
are the only answers there are: this is a shortcut to the same numbers, never another API.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth.principal import STATE_KEY, Principal
from service.models.predicting import PredictionOptions, predict_rows, read_body_shape
from service.models.prediction_output import answer_type, predictions_response
from service.models.predictors import PredictorCache
from service.ops.asgi import ShortWay

PATH = re.compile(r"/v1/models/([0-9A-Za-z_-]{1,64})/predictions")
JSON = "application/json"
QUERY_DEFAULTS = PredictionOptions()


class PredictionFastPath(ShortWay[tuple[str, Any]]):
    def __init__(self, app: ASGIApp, cache: Callable[[], PredictorCache | None],
                 max_bytes: int, max_rows: int) -> None:
        super().__init__(app)
        self.cache = cache
        self.max_bytes = max_bytes
        self.max_rows = max_rows

    async def answer(self, plain: tuple[str, Any], scope: Scope, receive: Receive,
                     send: Send) -> None:
        model_id, cached = plain
        messages: list[Message] = []
        body = b""
        complete = False
        while len(body) <= self.max_bytes:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client left: the route says so
            body += message.get("body", b"")
            if not message.get("more_body", False):
                complete = True
                break
        answered = (self._predict(cached, body)
                    if complete and len(body) <= self.max_bytes and b'"dataset_id"' not in body
                    else None)
        if answered is None:
            await self.app(scope, _replaying(messages, receive), send)
            return
        scope["route"] = self.route
        response = predictions_response(model_id, answered,
                                        answer_type(Headers(scope=scope).get("accept")))
        await response(scope, receive, send)

    def plain_request_of(self, scope: Scope) -> tuple[str, Any] | None:
        """The model id and its current cached model, if this request can go the short
        way (nothing read yet)."""
        if (scope["type"] != "http" or scope["method"] != "POST" or scope.get("query_string")
                or (match := PATH.fullmatch(scope["path"])) is None):
            return None
        media = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
        if media != JSON:
            return None
        cache = self.cache()
        principal = scope.get("state", {}).get(STATE_KEY)
        if cache is None or not isinstance(principal, Principal):
            return None
        model = cache.current(match.group(1), principal)
        return None if model is None else (match.group(1), model)

    def _predict(self, model: Any, body: bytes) -> Any:
        try:
            shape = read_body_shape(body, JSON, QUERY_DEFAULTS, self.max_rows)
            return predict_rows(model.predictor, model.categorical, shape, self.max_rows)
        except Exception:
            return None  # the route reads it again and gives its answer (or its problem)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that hands over the messages already read, then the connection's."""
    pending = list(messages)

    async def replay() -> MutableMapping[str, Any]:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
