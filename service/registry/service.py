"""Registry use cases: number a new model's version, read a name's versions and aliases,
move and remove aliases (with their ETags), find what ``name@version`` and ``name@alias``
refer to."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.orm import Session

from service.db.models import ModelRow, utcnow
from service.db.registry import ModelAliasRow, RegisteredModelRow, registered_model_id
from service.db.tenancy import session_principal
from service.errors import NotFound, PreconditionFailed
from service.registry import repository
from service.registry.names import Reference


def _registered_id(session: Session, name: str) -> str:
    """The id of ``name`` in the caller's tenant (an admin's names are its own tenant's, so
    a name means one thing whichever tenants the caller may read)."""
    principal = session_principal(session)
    return registered_model_id(principal.tenant if principal else None, name)


def register_version(session: Session, name: str) -> tuple[str, int]:
    """The registered id and the next version of ``name`` for a model being created in
    this transaction (the name is registered on its first model)."""
    registered_id = _registered_id(session, name)
    repository.ensure_registered(session, registered_id, name)
    return registered_id, repository.take_next_version(session, registered_id)


@dataclass(frozen=True)
class Registered:
    row: RegisteredModelRow
    versions: list[ModelRow]
    aliases: list[ModelAliasRow]


def get_registered(session: Session, name: str) -> RegisteredModelRow:
    row = repository.get_registered(session, _registered_id(session, name))
    if row is None:
        raise NotFound(f"There is no registered model named {name!r}: a model created "
                       f"with \"name\": \"{name}\" registers it.")
    return row


def read_registered(session: Session, name: str) -> Registered:
    row = get_registered(session, name)
    return Registered(row, repository.versions(session, row.id),
                      repository.aliases(session, row.id))


def list_registered(session: Session, limit: int, offset: int
                    ) -> tuple[list[RegisteredModelRow], int]:
    return repository.list_registered(session, limit, offset)


def version_model_id(session: Session, name: str, version: int) -> str:
    """The id of version ``version`` of ``name`` (404 if there is none)."""
    return _version_id(session, get_registered(session, name), version)


def _version_id(session: Session, row: RegisteredModelRow, version: int) -> str:
    model_id = repository.version_model_id(session, row.id, version)
    if model_id is None:
        raise NotFound(f"{row.name} has no version {version} (its versions go up to "
                       f"{row.latest_version}; a deleted version is not reused).",
                       latest_version=row.latest_version)
    return model_id


def alias_model_id(session: Session, name: str, alias: str) -> str:
    row = get_registered(session, name)
    model_id = repository.alias_model_id(session, row.id, alias)
    if model_id is None:
        raise NotFound(f"{name} has no alias {alias!r}; set it with "
                       f"PUT /v1/registry/{name}/aliases/{alias} {{\"version\": n}}.")
    return model_id


def referenced_model_id(session: Session, reference: Reference) -> str:
    if reference.version is not None:
        return version_model_id(session, reference.name, reference.version)
    assert reference.alias is not None
    return alias_model_id(session, reference.name, reference.alias)


def aliases_of_model(session: Session, model_id: str) -> list[ModelAliasRow]:
    return repository.aliases_of_model(session, model_id)


def alias_etag(row: ModelAliasRow) -> str:
    """Changes with every move, and differs between an alias and one of the same name
    deleted and set again (its time of setting is in it)."""
    variant = f"{row.registered_model_id}|{row.alias}|{row.revision}|{row.updated_at.isoformat()}"
    return '"' + hashlib.sha256(variant.encode()).hexdigest()[:32] + '"'


def get_alias(session: Session, name: str, alias: str, *, for_update: bool = False
              ) -> ModelAliasRow:
    row = get_registered(session, name)
    found = repository.get_alias(session, row.id, alias, for_update=for_update)
    if found is None:
        raise NotFound(f"{name} has no alias {alias!r}.")
    return found


def put_alias(session: Session, name: str, alias: str, version: int, if_match: str | None,
              if_none_match: str | None) -> tuple[ModelAliasRow, bool]:
    """Point ``alias`` at ``version``: create it, or move it if ``if_match`` names its
    current ETag (or is absent: an unconditional move). True when it was created."""
    registered = get_registered(session, name)
    model_id = _version_id(session, registered, version)
    current = repository.get_alias(session, registered.id, alias, for_update=True)
    _check_preconditions(name, alias, current, if_match, if_none_match)
    now = utcnow()
    if current is None:
        row = ModelAliasRow(registered_model_id=registered.id, alias=alias, model_id=model_id,
                            version=version, revision=1, updated_at=now)
        if repository.add_alias(session, row):
            return row, True
        # set by a concurrent request meanwhile: an unconditional PUT moves it; a PUT
        # that asked for the alias to be absent (or to have an ETag) is stale now
        current = repository.get_alias(session, registered.id, alias, for_update=True)
        assert current is not None
        _check_preconditions(name, alias, current, if_match, if_none_match)
    current.model_id, current.version = model_id, version
    current.revision += 1
    current.updated_at = now
    session.flush()
    return current, False


def delete_alias(session: Session, name: str, alias: str, if_match: str | None) -> None:
    row = get_alias(session, name, alias, for_update=True)
    _check_preconditions(name, alias, row, if_match, None)
    repository.delete_alias(session, row)


def _check_preconditions(name: str, alias: str, current: ModelAliasRow | None,
                         if_match: str | None, if_none_match: str | None) -> None:
    """RFC 9110's If-Match (the alias's current ETag, or ``*``: it exists) and
    If-None-Match ``*`` (it does not exist yet)."""
    etag = alias_etag(current) if current is not None else None
    if if_match is not None and not _any_matches(if_match, etag):
        where = (f"now {etag} (version {current.version})" if current is not None
                 else "not set")
        raise PreconditionFailed(
            f"{name}@{alias} has changed since you read it: its ETag is {where}, not "
            f"{if_match}. Read it again (GET /v1/registry/{name}/aliases/{alias}) and decide "
            "whether to move it.", current_etag=etag)
    if if_none_match is not None and if_none_match.strip() == "*" and current is not None:
        raise PreconditionFailed(
            f"{name}@{alias} exists already (version {current.version}); If-None-Match: * "
            "only creates it.", current_etag=etag)


def _any_matches(header: str, etag: str | None) -> bool:
    if etag is None:
        return False
    if header.strip() == "*":
        return True
    return any(candidate.strip() == etag for candidate in header.split(","))
