"""A model's JSON document, rendered once per finished model and shared.

A finished model's document changes only with its tags, so it is rendered once per
revision of its tags (off the event loop) and kept (``ImmutableCache``); when one fit
finishes with many long polls waiting on it, the first waiter renders and the others are
answered with the same bytes, instead of each reading the result and serializing it again
on the event loop. The caller reads the tags' revision from the database first (with the
model's status), so a document kept in one API process is not served after another
process changed the tags.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from service.auth.principal import Principal
from service.db.models import ModelRow
from service.models import service
from service.models.immutable_cache import ImmutableCache
from service.models.schemas import Model


def render(row: ModelRow) -> bytes:
    return Model.from_row(row).model_dump_json().encode()


def _read_and_render(session: Session, model_id: str) -> tuple[ModelRow, bytes]:
    row = service.get_model(session, model_id)
    body = render(row)
    session.rollback()  # a read: end it before answering
    return row, body


class ModelDocuments(ImmutableCache[tuple[int, bytes]]):
    """Documents by model id, each with the revision of the tags it shows."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes)
        self._rendering: dict[tuple[str, int], asyncio.Future[bytes]] = {}
        self._reading: dict[str, asyncio.Future[bytes]] = {}

    async def _unfinished(self, session: Session, model_id: str) -> bytes:
        """An unfinished model's document, read now; the long polls whose waits end
        together (hundreds at a wait's end, on a few queued fits) share one read of each
        model instead of each reading and rendering it on the threadpool. Each caller was
        allowed to read the model by its own scoped session before it asked."""
        pending = self._reading.get(model_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._reading[model_id] = future
        try:
            body = (await run_in_threadpool(_read_and_render, session, model_id))[1]
            future.set_result(body)
            return body
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            del self._reading[model_id]

    async def document(self, session: Session, principal: Principal, model_id: str,
                       finished: bool, revision: int = 0) -> bytes:
        """The document of a model the caller has just been allowed to read (its scoped
        session found it), ``finished`` or not, whose tags are at ``revision``."""
        if not finished:
            return await self._unfinished(session, model_id)
        cached = self.get(model_id, principal)
        if cached is not None and cached[0] == revision:
            return cached[1]
        pending = self._rendering.get((model_id, revision))
        if pending is not None:  # another waiter is rendering it: share its answer
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._rendering[(model_id, revision)] = future
        try:
            row, body = await run_in_threadpool(_read_and_render, session, model_id)
            if row.status in service.FINISHED:
                self.put(model_id, row.tenant, (row.tags_revision, body), len(body))
            future.set_result(body)
            return body
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            del self._rendering[(model_id, revision)]
