"""``ModelIdDep``: the model id that a ``{model_id}`` path segment names, for every route
that takes one, whether the segment is an id, ``name@version`` or ``name@alias``.

An alias is read again at every request (one indexed query) before anything cached by
model id is looked at, so a moved alias is followed at once; such a request's answer is
marked as naming a moving target (``caching.MOVING_REFERENCE``), so it is never
``immutable``. An id costs no query here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from service.db.tenancy import scope_session
from service.dependencies import get_principal, get_read_session_factory
from service.models import service
from service.models.caching import MOVING_REFERENCE
from service.registry.names import parse_reference

MODEL_PATH = Path(description=(
    "A model's id, or a registered name with a version (mood-by-state@3) or an alias "
    "(mood-by-state@champion)"))


async def model_id_of(model_id: Annotated[str, MODEL_PATH], request: Request) -> str:
    """Resolve the path's model reference in the caller's tenant (404 if it names none).
    An id is answered on the event loop: no session, no trip to the threadpool."""
    if parse_reference(model_id) is None:
        return model_id
    reference = await run_in_threadpool(_resolve, request, model_id)
    if reference.moves:
        setattr(request.state, MOVING_REFERENCE, True)
    return reference.model_id


def _resolve(request: Request, segment: str) -> service.ModelRef:
    # a read of its own, ended before the route's reads begin
    with scope_session(get_read_session_factory(request)(), get_principal(request)) as session:
        return service.resolve_model_ref(session, segment)


ModelIdDep = Annotated[str, Depends(model_id_of)]
