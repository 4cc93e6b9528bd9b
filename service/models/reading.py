"""``GET /v1/models/{id}``'s answer, given by the route and by its short way
(``service.models.fast_reads``) alike: one function, so the two cannot differ."""

from __future__ import annotations

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from service.db.models import ModelRow
from service.dependencies import get_principal, get_read_session_factory
from service.models import service
from service.models.caching import freshness
from service.models.documents import ModelDocuments
from service.models.shared_reads import SharedReads, scope_of


async def model_answer(request: Request, model_id: str, wait: float) -> Response:
    """The model's document (with its ETag, or a 304), once its fit has finished or
    ``wait`` seconds (capped by the settings) have passed.

    Each read is made in a session of its own that ends at once. Long polls on one model
    share their reads (hundreds arrive and time out together); a plain read does not: it
    must see what its caller wrote just before."""
    principal = get_principal(request)
    factory = get_read_session_factory(request)
    wait = min(wait, request.app.state.settings.max_wait_seconds)

    def read() -> ModelRow:
        return service.read_model_status(factory, principal, model_id)

    async def read_status() -> ModelRow:
        if wait > 0:
            reads: SharedReads[ModelRow] = request.app.state.model_status_reads
            return await reads.read((model_id, scope_of(principal)), read)
        return await run_in_threadpool(read)

    row = await service.wait_for_model(read_status, wait, request.app.state.finish_watch,
                                       gone=request.is_disconnected)
    fresh = freshness(request, row)
    if fresh.not_modified:
        return fresh.not_modified_response()
    documents: ModelDocuments = request.app.state.model_documents
    body = await documents.document(factory, principal, row.id,
                                    row.status in service.FINISHED, row.tags_revision)
    return fresh.apply(Response(body, media_type="application/json"))
