"""Storage of the model registry (issue 13): registered names and their aliases.

A registered name's row holds the counter of its versions: a model created with the name
takes ``latest_version + 1`` in the transaction that stores it, through an UPDATE that
locks the row, so two creations of one name at once get consecutive versions on
PostgreSQL (the second waits for the first to commit) and on SQLite (writers take turns,
``BEGIN IMMEDIATE``); a version is never reused, even after its model is deleted.

The row's id is derived from (tenant, name) (``registered_model_id``): a primary key, so
two first creations of a name at once collide on it on both backends, where a unique
constraint over a nullable tenant would not (NULLs are distinct in SQL).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.models import Base, Tenanted, UTCDateTime

_NAMESPACE = uuid.UUID("5b0b2d1e-8f0c-4c1e-9a53-2f4f6f1f0d13")


def registered_model_id(tenant: str | None, name: str) -> str:
    """The id of a tenant's registered name (the same on every deployment)."""
    return str(uuid.uuid5(_NAMESPACE, f"{tenant or ''}\x00{name}"))


class RegisteredModelRow(Tenanted, Base):
    """A name under which a tenant's models are numbered versions 1, 2, 3 ..."""

    __tablename__ = "registered_models"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    latest_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ModelAliasRow(Tenanted, Base):
    """A movable pointer (``champion``) from a registered name to one of its versions.

    ``revision`` counts its moves: the alias's ETag, which a PUT with If-Match must name.
    """

    __tablename__ = "model_aliases"

    registered_model_id: Mapped[str] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    # no ON DELETE: a model an alias points at cannot be deleted (the API says which alias)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
