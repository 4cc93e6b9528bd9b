"""SQL for datasets. The Parquet content is loaded only when asked for."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session, defer, undefer

from service.db import reserve
from service.db.ids import can_exist
from service.db.models import DatasetRow


def add_dataset(session: Session, row: DatasetRow) -> DatasetRow:
    session.add(row)
    session.flush()
    return row


# built once (a statement costs more to build than to run), the id a parameter; by
# whether the content is loaded
_BY_ID = {with_content: select(DatasetRow).where(DatasetRow.id == bindparam("dataset_id"))
          .options(undefer(DatasetRow.content) if with_content else defer(DatasetRow.content))
          for with_content in (False, True)}


def get_dataset(session: Session, dataset_id: str, *, with_content: bool = False
                ) -> DatasetRow | None:
    if not can_exist(dataset_id):
        return None
    return session.scalars(_BY_ID[with_content], {"dataset_id": dataset_id}).one_or_none()


def list_datasets(session: Session, limit: int, offset: int) -> tuple[list[DatasetRow], int]:
    """A page of datasets, newest first, and the total count (content not loaded)."""
    total = session.scalar(select(func.count()).select_from(DatasetRow)) or 0
    statement = (
        select(DatasetRow)
        .options(defer(DatasetRow.content))
        .order_by(DatasetRow.created_at.desc(), DatasetRow.id)
        .limit(limit)
        .offset(offset)
    )
    return list(session.scalars(statement)), total


def delete_dataset(session: Session, dataset_id: str) -> bool:
    """Delete a dataset; its models stay (they predict without it). False if absent."""
    if not can_exist(dataset_id):
        return False
    result = session.execute(delete(DatasetRow).where(DatasetRow.id == dataset_id))
    deleted = bool(result.rowcount)  # type: ignore[attr-defined]
    if deleted:
        # deleting is how a client frees space on a full disk: on PostgreSQL the space is
        # reusable only once vacuumed, which this asks for right after the commit
        reserve.reclaim_after_commit(session, DatasetRow.__tablename__)
    return deleted
