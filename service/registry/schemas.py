"""Bodies of the registry API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from service.db.models import ModelRow
from service.db.registry import ModelAliasRow, RegisteredModelRow
from service.models.schemas import Kind, Status, Tags


class AliasSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="The version of the name the alias points at")


class Alias(BaseModel):
    alias: str
    name: str
    version: int
    model_id: str
    updated_at: datetime

    @classmethod
    def from_row(cls, row: ModelAliasRow, name: str) -> Alias:
        return cls(alias=row.alias, name=name, version=row.version, model_id=row.model_id,
                   updated_at=row.updated_at)


class Version(BaseModel):
    version: int
    model_id: str
    status: Status
    kind: Kind
    created_at: datetime
    tags: Tags

    @classmethod
    def from_row(cls, row: ModelRow) -> Version:
        assert row.version is not None
        return cls(version=row.version, model_id=row.id,
                   status=row.status,  # type: ignore[arg-type]
                   kind=row.kind,  # type: ignore[arg-type]
                   created_at=row.created_at, tags=row.tags or {})


class RegisteredModelSummary(BaseModel):
    name: str
    latest_version: int = Field(description="The highest version given so far (a deleted "
                                            "version's number is not reused)")
    created_at: datetime

    @classmethod
    def from_row(cls, row: RegisteredModelRow) -> RegisteredModelSummary:
        return cls(name=row.name, latest_version=row.latest_version, created_at=row.created_at)


class RegisteredModel(RegisteredModelSummary):
    versions: list[Version]
    aliases: list[Alias]


class RegisteredModelList(BaseModel):
    items: list[RegisteredModelSummary]
    total: int
    limit: int
    offset: int
