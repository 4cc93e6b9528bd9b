"""HTTP routes of /v1/models/{id}/export and /v1/models/import."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from service.body import media_type, read_body, unsupported
from service.dependencies import ComputeDep, SessionDep, SettingsDep, committed_unit_of_work
from service.errors import problem_responses
from service.models.references import ModelIdDep
from service.models.schemas import Model
from service.portability import service
from service.portability.document import FORMAT

router = APIRouter(prefix="/v1/models", tags=["models"])
UPLOAD_SETTING = "MIXEDFIT_MAX_UPLOAD_BYTES"

_DOCUMENT: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {
    "schema": {"type": "object", "description": (
        f"An exported model: format \"{FORMAT}\", format_version, mixedfit_version, "
        "model (name, version, tags, formula, method, kind, dataset_id ...), result, "
        "prediction_state, conditional_modes and checksum {algorithm: sha256, value}: the "
        "SHA-256 of the document's canonical JSON (keys sorted, no spaces) without "
        "'checksum'")}}}}}


@router.get("/{model_id}/export", response_class=Response,
            responses={**_DOCUMENT, **problem_responses(404, 409)})
def export_model(model_id: ModelIdDep, request: Request, session: SessionDep) -> Response:
    """A succeeded model as one versioned, checksummed JSON document, for
    POST /v1/models/import on this or another deployment."""
    document = service.export_model(session, model_id, request.app.version)
    model = document["model"]
    stem = (f"{model['name']}-v{model['version']}" if model["version"] is not None
            else model["id"])
    return Response(orjson.dumps(document), media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="{stem}.mixedfit.json"'})


@router.post("/import", status_code=201, response_model=Model,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": {"type": "object", "description": (
                     "A document from GET /v1/models/{id}/export")}}}}},
             responses=problem_responses(413, 415, 422))
async def import_model(request: Request, response: Response, settings: SettingsDep,
                       pool: ComputeDep) -> Model:
    """Store an exported model as a new succeeded model of the caller's tenant, which
    predicts as the original did (its checksum is verified: 422 if it does not match)."""
    if media_type(request) != "application/json":
        raise unsupported(request, ["application/json"])
    body = await read_body(request, settings.max_upload_bytes, UPLOAD_SETTING)
    # parsing, verifying and compiling grow with the model: in a compute child
    document = await pool.run("reading the exported model", service.verified_document,
                              body, gone=request.is_disconnected)
    model = await run_in_threadpool(_store, request, document)
    response.headers["Location"] = f"/v1/models/{model.id}"
    return model


def _store(request: Request, document: dict[str, Any]) -> Model:
    with committed_unit_of_work(request) as session:
        return Model.from_row(service.import_model(session, document))
