"""Dataset use cases: turn an upload into a stored, typed dataset; read and delete them."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.datasets import repository
from service.datasets.ingest import (
    Limits,
    Table,
    check_shape,
    frame_from_records,
    head_of,
    normalize,
    precheck,
    read_table,
    sniff_format,
)
from service.datasets.schemas import DatasetRecords
from service.db.models import DatasetRow, utcnow
from service.errors import InvalidInput, NotFound, field_errors

DEFAULT_NAME = "dataset"


@dataclass(frozen=True)
class Upload:
    """What the client sent: the raw bytes and how to read them."""

    data: bytes
    kind: str  # "csv", "parquet", "records" or "sniff" (decide from the bytes)
    name: str | None = None
    filename: str | None = None
    limits: Limits = Limits()  # what the upload may hold (the upload limit bounds Parquet too)
    categorical: tuple[str, ...] = ()  # columns declared categorical (``?categorical=``)
    # a large body spooled to this file (``data`` then empty): read in the compute child
    path: str | None = None
    spooled_bytes: int = 0  # the size of that file

    @property
    def size(self) -> int:
        return self.spooled_bytes if self.path is not None else len(self.data)

    def loaded(self) -> Upload:
        """This upload with its body in memory (in the child that parses it)."""
        if self.path is None:
            return self
        return replace(self, data=Path(self.path).read_bytes(), path=None, spooled_bytes=0)


def parse_upload(upload: Upload) -> tuple[Table, str | None]:
    """Read an upload into a normalized table; also return a name found in the body."""
    upload = upload.loaded()
    if upload.kind == "records":
        try:
            payload = DatasetRecords.model_validate_json(upload.data)
        except ValidationError as exc:
            errors = field_errors([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])
            raise InvalidInput("The JSON body is not a dataset: "
                               + "; ".join(f"{e['field'] or 'body'}: {e['detail']}"
                                           for e in errors), errors=errors) from None
        if not payload.records:
            raise InvalidInput("The data has no rows: 'records' is empty.")
        check_shape(upload.limits, n_rows=len(payload.records))
        names: set[str] = set()
        for record in payload.records:
            names.update(record)
        check_shape(upload.limits, n_columns=len(names))
        declared = list(dict.fromkeys([*upload.categorical, *payload.categorical]))
        return normalize(frame_from_records(payload.records, declared), declared), payload.name
    if not upload.data:
        raise InvalidInput("The upload is empty.")
    kind = upload.kind
    fmt = sniff_format(upload.data, upload.filename) if kind == "sniff" else kind
    return read_table(upload.data, "parquet" if fmt == "parquet" else "csv",
                      upload.limits, upload.categorical), None


def declared_columns(values: list[str]) -> tuple[str, ...]:
    """Column names from ``?categorical=`` values: repeated, or separated by commas."""
    names = (part.strip() for value in values for part in value.split(","))
    return tuple(dict.fromkeys(name for name in names if name))


@dataclass(frozen=True)
class ParsedUpload:
    """An upload read and typed, ready to store (plain data: it comes back from a compute
    child, without the frame)."""

    n_rows: int
    columns: list[dict[str, Any]]
    parquet: bytes
    sha256: str
    body_name: str | None


def precheck_upload(upload: Upload) -> None:
    """Refuse what the upload's header or footer shows too large, before it is read."""
    if upload.kind in ("csv", "sniff") and upload.size:
        source = Path(upload.path) if upload.path is not None else upload.data
        fmt = (sniff_format(head_of(source, 4), upload.filename) if upload.kind == "sniff"
               else "csv")
        precheck(source, "parquet" if fmt == "parquet" else "csv", upload.limits)


def read_upload(upload: Upload) -> ParsedUpload:
    """Parse and type an upload (CPU and memory grow with it: run in a compute child)."""
    upload = upload.loaded()
    table, body_name = parse_upload(upload)
    return ParsedUpload(n_rows=table.n_rows, columns=[c.to_dict() for c in table.columns],
                        parquet=table.parquet, sha256=hashlib.sha256(upload.data).hexdigest(),
                        body_name=body_name)


def store_dataset(session: Session, upload: Upload, parsed: ParsedUpload) -> DatasetRow:
    """Store a parsed upload."""
    row = DatasetRow(
        id=str(uuid.uuid4()),
        name=(clean_name(upload.name or parsed.body_name or _stem(upload.filename))
              or DEFAULT_NAME),
        n_rows=parsed.n_rows,
        columns=parsed.columns,
        sha256=parsed.sha256,
        size_bytes=upload.size,
        content=parsed.parquet,
        created_at=utcnow(),
    )
    return repository.add_dataset(session, row)


def create_dataset(session: Session, upload: Upload) -> DatasetRow:
    """Parse, type and store an upload."""
    return store_dataset(session, upload, read_upload(upload))


def get_dataset(session: Session, dataset_id: str) -> DatasetRow:
    row = repository.get_dataset(session, dataset_id)
    if row is None:
        raise NotFound(f"There is no dataset with id {dataset_id!r}.")
    return row


def list_datasets(session: Session, limit: int, offset: int) -> tuple[list[DatasetRow], int]:
    return repository.list_datasets(session, limit, offset)


def delete_dataset(session: Session, dataset_id: str) -> None:
    """Delete a dataset; models fitted on it keep predicting."""
    if not repository.delete_dataset(session, dataset_id):
        raise NotFound(f"There is no dataset with id {dataset_id!r}.")


def clean_name(name: str | None) -> str | None:
    """A name as the database can hold it: no NUL characters (PostgreSQL refuses them in
    text), at most 200 characters."""
    if name is None:
        return None
    return name.replace("\x00", "").strip()[:200] or None


def _stem(filename: str | None) -> str | None:
    if not filename:
        return None
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base[1:] else base
    return stem[:200] or None
