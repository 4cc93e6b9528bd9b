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

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from service.auth.principal import SYSTEM, Principal
from service.db.models import ModelRow
from service.db.tenancy import tenant_read
from service.errors import NotFound
from service.models import repository, service
from service.models.immutable_cache import ImmutableCache
from service.models.schemas import Model
from service.models.shared_reads import SharedReads, scope_of

log = logging.getLogger(__name__)


def render(row: ModelRow) -> bytes:
    return Model.from_row(row).model_dump_json().encode()


@dataclass(frozen=True)
class Rendered:
    """A model's document and what its keeping depends on, as read with it."""

    id: str
    status: str
    tenant: str | None
    tags_revision: int
    body: bytes


def read_and_render(factory: sessionmaker[Session], principal: Principal,
                    model_id: str) -> Rendered:
    """The model read in a session of its own, scoped to ``principal`` (a shared read
    outlives the request that started it), and its document."""
    with tenant_read(factory, principal) as session:
        row = repository.get_model_document(session, model_id)
        if row is None:
            raise NotFound(f"There is no model with id {model_id!r}.")
        return Rendered(row.id, row.status, row.tenant, row.tags_revision, render(row))


def read_after_job(factory: sessionmaker[Session], model_id: str) -> Rendered | None:
    """The document of a model whose job has just ended, read by its worker's thread for
    the clients of this process that wait on it (``FinishWatch.finished``), so that they
    are answered without a read of their own; None if it cannot be read now (the model
    was deleted, the database is unavailable): they read it themselves then."""
    try:
        return read_and_render(factory, SYSTEM, model_id)
    except Exception as error:  # the waiters' own read says what is wrong
        log.info("model %s: not read after its job (%s)", model_id, type(error).__name__)
        return None


class ModelDocuments(ImmutableCache[tuple[int, bytes]]):
    """Documents by model id, each with the revision of the tags it shows."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes)
        self._reads: SharedReads[Rendered] = SharedReads()

    async def document(self, factory: sessionmaker[Session], principal: Principal,
                       model_id: str, finished: bool, revision: int = 0) -> bytes:
        """The document of a model the caller has just been allowed to read, ``finished``
        or not, whose tags are at ``revision``. Unfinished: read now, one read shared by
        the long polls whose waits end together (hundreds at a wait's end, on a few queued
        fits). Finished: kept, and rendered once for all who ask meanwhile."""
        scope = scope_of(principal)
        if not finished:
            unfinished = await self._reads.read(
                ("unfinished", model_id, scope),
                lambda: read_and_render(factory, principal, model_id))
            return unfinished.body
        cached = self.get(model_id, principal)
        if cached is not None and cached[0] == revision:
            return cached[1]
        done = await self._reads.read(("finished", model_id, revision, scope),
                                      lambda: read_and_render(factory, principal, model_id))
        self.keep(done)
        return done.body

    def keep(self, rendered: Rendered) -> None:
        """Keep a document read and rendered elsewhere, if its model has finished."""
        if rendered.status in service.FINISHED:
            self.put(rendered.id, rendered.tenant, (rendered.tags_revision, rendered.body),
                     len(rendered.body))
