"""SQL of the registry: registered names, their version counters and aliases."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, load_only

from service.db.models import ModelRow, utcnow
from service.db.registry import ModelAliasRow, RegisteredModelRow


def get_registered(session: Session, registered_id: str) -> RegisteredModelRow | None:
    return session.scalars(select(RegisteredModelRow)
                           .where(RegisteredModelRow.id == registered_id)).one_or_none()


def list_registered(session: Session, limit: int, offset: int
                    ) -> tuple[list[RegisteredModelRow], int]:
    """A page of registered names by name, and how many there are."""
    total = session.scalar(select(func.count()).select_from(RegisteredModelRow)) or 0
    rows = session.scalars(select(RegisteredModelRow).order_by(RegisteredModelRow.name)
                           .limit(limit).offset(offset))
    return list(rows), total


def ensure_registered(session: Session, registered_id: str, name: str) -> None:
    """Store the registered name unless it is stored already (by this or a concurrent
    transaction: the second insert of the same id waits for the first and then fails on
    the primary key, inside a savepoint that leaves the transaction usable)."""
    if get_registered(session, registered_id) is not None:
        return
    try:
        with session.begin_nested():
            session.add(RegisteredModelRow(id=registered_id, name=name, latest_version=0,
                                           created_at=utcnow()))
    except IntegrityError:
        pass  # created meanwhile by another transaction: the counter is there to take


def take_next_version(session: Session, registered_id: str) -> int:
    """Increment the name's counter and return it. The UPDATE locks the row until the
    transaction ends, so concurrent creators of the name take consecutive numbers, and a
    rolled-back creation gives its number back."""
    statement = (update(RegisteredModelRow).where(RegisteredModelRow.id == registered_id)
                 .values(latest_version=RegisteredModelRow.latest_version + 1)
                 .returning(RegisteredModelRow.latest_version)
                 .execution_options(synchronize_session=False))
    version: int = session.execute(statement).scalar_one()
    return version


def versions(session: Session, registered_id: str) -> list[ModelRow]:
    """The models of a registered name, by version (summary columns only)."""
    statement = (select(ModelRow).where(ModelRow.registered_model_id == registered_id)
                 .order_by(ModelRow.version)
                 .options(load_only(ModelRow.id, ModelRow.version, ModelRow.status,
                                    ModelRow.kind, ModelRow.created_at, ModelRow.tags,
                                    raiseload=True)))
    return list(session.scalars(statement))


def version_model_id(session: Session, registered_id: str, version: int) -> str | None:
    statement = select(ModelRow.id).where(ModelRow.registered_model_id == registered_id,
                                          ModelRow.version == version)
    return session.scalars(statement).one_or_none()


def aliases(session: Session, registered_id: str) -> list[ModelAliasRow]:
    return list(session.scalars(select(ModelAliasRow)
                                .where(ModelAliasRow.registered_model_id == registered_id)
                                .order_by(ModelAliasRow.alias)))


def get_alias(session: Session, registered_id: str, alias: str, *,
              for_update: bool = False) -> ModelAliasRow | None:
    statement = select(ModelAliasRow).where(ModelAliasRow.registered_model_id == registered_id,
                                            ModelAliasRow.alias == alias)
    if for_update:
        statement = statement.with_for_update()
    return session.scalars(statement).one_or_none()


def alias_model_id(session: Session, registered_id: str, alias: str) -> str | None:
    statement = select(ModelAliasRow.model_id).where(
        ModelAliasRow.registered_model_id == registered_id, ModelAliasRow.alias == alias)
    return session.scalars(statement).one_or_none()


def add_alias(session: Session, row: ModelAliasRow) -> bool:
    """Insert a new alias; False if a concurrent transaction created it first."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True


def delete_alias(session: Session, row: ModelAliasRow) -> None:
    session.delete(row)
    session.flush()


def aliases_of_model(session: Session, model_id: str) -> list[ModelAliasRow]:
    return list(session.scalars(select(ModelAliasRow).where(ModelAliasRow.model_id == model_id)
                                .order_by(ModelAliasRow.alias)))

