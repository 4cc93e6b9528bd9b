"""Request and response bodies of the datasets API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.db.models import DatasetRow

# The largest page offset: any count of rows is below it, and databases' 64-bit OFFSET
# (and JSON's exact integers) hold it.
MAX_OFFSET = 2**53 - 1

# A JSON scalar: what one cell of an uploaded record may hold (null is a missing value).
Cell = str | float | int | bool | None


class DatasetColumn(BaseModel):
    name: str
    dtype: Literal["numeric", "categorical", "boolean"]
    n_missing: int


class Dataset(BaseModel):
    id: str
    name: str
    n_rows: int
    columns: list[DatasetColumn]
    sha256: str = Field(description="SHA-256 of the uploaded bytes (the file, or the JSON body)")
    size_bytes: int = Field(description="Size of the uploaded bytes")
    created_at: datetime

    @classmethod
    def from_row(cls, row: DatasetRow) -> Dataset:
        return cls(
            id=row.id, name=row.name, n_rows=row.n_rows,
            columns=[DatasetColumn.model_validate(c) for c in row.columns],
            sha256=row.sha256, size_bytes=row.size_bytes, created_at=row.created_at,
        )


class DatasetList(BaseModel):
    items: list[Dataset]
    total: int
    limit: int
    offset: int


class DatasetRecords(BaseModel):
    """A dataset sent as JSON: one object per row, keys are column names."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    records: list[dict[str, Cell]]
    categorical: list[str] = Field(
        default_factory=list, max_length=10_000,
        description="Columns to store as categorical (factors) whatever they hold; numbers "
                    "become levels as R's as.character writes them (0 -> \"0\", 1e5 -> "
                    "\"1e+05\", whole numbers of an integer column in full)")
