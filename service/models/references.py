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

from service.db.session import end_reads
from service.dependencies import ReadSessionDep
from service.models import service
from service.models.caching import MOVING_REFERENCE

MODEL_PATH = Path(description=(
    "A model's id, or a registered name with a version (mood-by-state@3) or an alias "
    "(mood-by-state@champion)"))


def model_id_of(model_id: Annotated[str, MODEL_PATH], request: Request,
                session: ReadSessionDep) -> str:
    """Resolve the path's model reference in the caller's tenant (404 if it names none)."""
    reference = service.resolve_model_ref(session, model_id)
    if reference.moves:
        setattr(request.state, MOVING_REFERENCE, True)
    if reference.model_id != model_id:
        end_reads(session)  # the route's own reads start afresh
    return reference.model_id


ModelIdDep = Annotated[str, Depends(model_id_of)]
