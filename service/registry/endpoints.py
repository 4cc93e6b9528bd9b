"""HTTP routes of /v1/registry: registered names, their versions and aliases."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response

from service.dependencies import SessionDep
from service.errors import problem_responses
from service.models import service as models
from service.models.schemas import Model
from service.pagination import PageQuery
from service.registry import service
from service.registry.names import ALIAS_RULE, NAME_RULE
from service.registry.schemas import (
    Alias,
    AliasSet,
    RegisteredModel,
    RegisteredModelList,
    RegisteredModelSummary,
    Version,
)

router = APIRouter(prefix="/v1/registry", tags=["registry"])

NamePath = Annotated[str, Path(pattern=f"^{NAME_RULE}$", description="A registered name")]
AliasPath = Annotated[str, Path(pattern=f"^{ALIAS_RULE}$", description="An alias")]
IfMatch = Annotated[str | None, Header(description=(
    "The alias's ETag as last read: the change is made only if nobody moved it since "
    "(else 412). Without it, the change is unconditional"))]


@router.get("", response_model=RegisteredModelList, responses=problem_responses(422))
def list_registered(session: SessionDep,
                    page: Annotated[PageQuery, Query()]) -> RegisteredModelList:
    """The caller's registered names, by name."""
    rows, total = service.list_registered(session, page.limit, page.offset)
    return RegisteredModelList(items=[RegisteredModelSummary.from_row(r) for r in rows],
                               total=total, limit=page.limit, offset=page.offset)


@router.get("/{name}", response_model=RegisteredModel, responses=problem_responses(404, 422))
def get_registered(name: NamePath, session: SessionDep) -> RegisteredModel:
    """A registered name: its versions (summaries) and aliases."""
    found = service.read_registered(session, name)
    return RegisteredModel(
        **RegisteredModelSummary.from_row(found.row).model_dump(),
        versions=[Version.from_row(v) for v in found.versions],
        aliases=[Alias.from_row(a, name) for a in found.aliases])


@router.get("/{name}/versions/{version}", response_model=Model,
            responses=problem_responses(404, 422))
def get_version(name: NamePath, version: Annotated[int, Path(ge=1)],
                session: SessionDep) -> Model:
    """One version of a name: the model (as GET /v1/models/{name}@{version})."""
    model_id = service.version_model_id(session, name, version)
    return Model.from_row(models.get_model(session, model_id))


@router.get("/{name}/aliases/{alias}", response_model=Alias,
            responses=problem_responses(404, 422))
def get_alias(name: NamePath, alias: AliasPath, response: Response,
              session: SessionDep) -> Alias:
    """Where an alias points, with its ETag (for a conditional move)."""
    row = service.get_alias(session, name, alias)
    response.headers["ETag"] = service.alias_etag(row)
    response.headers["Cache-Control"] = "no-cache"
    return Alias.from_row(row, name)


@router.put("/{name}/aliases/{alias}", response_model=Alias,
            responses={201: {"model": Alias, "description": "The alias was created"},
                       **problem_responses(404, 412, 422)})
def put_alias(
    name: NamePath,
    alias: AliasPath,
    body: AliasSet,
    response: Response,
    session: SessionDep,
    if_match: IfMatch = None,
    if_none_match: Annotated[str | None, Header(description=(
        "'*': create the alias only if it does not exist yet (else 412)"))] = None,
) -> Any:
    """Point an alias at a version of the name: created (201) or moved (200)."""
    row, created = service.put_alias(session, name, alias, body.version, if_match,
                                     if_none_match)
    response.status_code = 201 if created else 200
    response.headers["ETag"] = service.alias_etag(row)
    if created:
        response.headers["Location"] = f"/v1/registry/{name}/aliases/{alias}"
    return Alias.from_row(row, name)


@router.delete("/{name}/aliases/{alias}", status_code=204,
               responses=problem_responses(404, 412, 422))
def delete_alias(name: NamePath, alias: AliasPath, session: SessionDep,
                 if_match: IfMatch = None) -> Response:
    """Remove an alias (the version it pointed at stays)."""
    service.delete_alias(session, name, alias, if_match)
    return Response(status_code=204)
