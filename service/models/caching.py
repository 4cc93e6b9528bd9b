"""HTTP caching of finished models and what is computed from them.

A model whose fit has finished never changes, nor do its coefficients, random effects,
residuals and plots, so their answers carry an ``ETag`` and ``Cache-Control: immutable``,
and a request whose ``If-None-Match`` names the ETag is answered 304 before anything is
computed (a plot is not drawn again to find it unchanged). The ETag is derived from the
model's id and the moment its fit finished, with the request's path, query and the
headers that choose the representation (``Accept``), so each variant has its own.
``private``: answers are the caller's tenant's and must not sit in shared caches.
Unfinished models are ``no-cache``: their status changes.

Two answers about a finished model are revalidated (``private, no-cache`` with an ETag)
instead: the model's own document, which shows its tags (the one mutable part of a model:
their revision is in the ETag, so a 304 is never answered for stale tags), and anything
read through ``name@alias``, which names another model once the alias moves (the request's
``MOVING_REFERENCE`` state, set by the path's resolver, says so).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from fastapi import Request, Response

from service.db.models import ModelRow

IMMUTABLE = "private, max-age=31536000, immutable"
REVALIDATE = "private, no-cache"
UNFINISHED = "no-cache"
MOVING_REFERENCE = "model_ref_moves"
FINISHED = ("succeeded", "failed", "cancelled")
# the OpenAPI entry of the answer to a current If-None-Match
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the client's copy (If-None-Match) is current"}}


@dataclass(frozen=True)
class Freshness:
    """What a conditional GET of a model's resource answers."""

    etag: str | None  # None: the model has not finished (not cacheable)
    not_modified: bool
    cache_control: str = IMMUTABLE

    @property
    def headers(self) -> dict[str, str]:
        if self.etag is None:
            return {"Cache-Control": UNFINISHED}
        return {"ETag": self.etag, "Cache-Control": self.cache_control, "Vary": "Accept"}

    def apply(self, response: Response) -> Response:
        response.headers.update(self.headers)
        return response

    def not_modified_response(self) -> Response:
        return Response(status_code=304, headers=self.headers)


def freshness(request: Request, row: ModelRow, *, derived: bool = False) -> Freshness:
    """The ETag of this request's answer about ``row``, and whether the client has it.

    ``derived``: the answer is computed from the fit (coefficients, residuals, plots), so
    only a succeeded model has one (a failed model's answer is a 409, never cached).
    """
    finished = ("succeeded",) if derived else FINISHED
    if row.status not in finished or row.finished_at is None:
        return Freshness(None, False)
    if derived and not getattr(request.state, MOVING_REFERENCE, False):
        return finished_freshness(request, row.id, row.finished_at)
    fresh = finished_freshness(request, row.id, row.finished_at,
                               0 if derived else row.tags_revision)
    return replace(fresh, cache_control=REVALIDATE)


def finished_freshness(request: Request, row_id: str, finished_at: datetime,
                       revision: int = 0) -> Freshness:
    """The ETag of an answer about a finished, immutable row (a model, a batch of
    predictions), and whether the client has it; ``revision``: of its tags."""
    tag = model_etag(row_id, finished_at, request, revision)
    return Freshness(tag, _matches(request.headers.get("if-none-match"), tag))


def model_etag(model_id: str, finished_at: datetime, request: Request,
               revision: int = 0) -> str:
    query = "&".join(sorted(f"{k}={v}" for k, v in request.query_params.multi_items()
                            if k != "wait"))
    variant = "|".join((model_id, finished_at.isoformat(), request.url.path, query,
                        request.headers.get("accept", ""), str(revision)))
    return '"' + hashlib.sha256(variant.encode()).hexdigest()[:32] + '"'


def _matches(header: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison of If-None-Match with the current ETag."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == bare for candidate in header.split(","))
