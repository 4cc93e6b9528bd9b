"""SQL for comparisons, and the one query reading their member models."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

from service.db.ids import can_exist
from service.db.models import ComparisonRow, ModelRow


def add_comparison(session: Session, row: ComparisonRow) -> ComparisonRow:
    session.add(row)
    session.flush()
    return row


def get_comparison(session: Session, comparison_id: str) -> ComparisonRow | None:
    if not can_exist(comparison_id):
        return None
    return session.get(ComparisonRow, comparison_id)


def list_comparisons(session: Session, limit: int, offset: int
                     ) -> tuple[list[ComparisonRow], int]:
    """A page of comparisons, newest first (their tables not loaded), and the total."""
    statement = (select(ComparisonRow).order_by(ComparisonRow.created_at.desc(),
                                                ComparisonRow.id)
                 .options(defer(ComparisonRow.result)).limit(limit).offset(offset))
    total = session.scalar(select(func.count()).select_from(ComparisonRow)) or 0
    return list(session.scalars(statement)), total


def delete_comparison(session: Session, row: ComparisonRow) -> None:
    session.delete(row)
    session.flush()


def get_models(session: Session, model_ids: Iterable[str]) -> dict[str, ModelRow]:
    """The models with these ids that exist, by id."""
    ids = [i for i in dict.fromkeys(model_ids) if can_exist(i)]
    rows = session.scalars(select(ModelRow).where(ModelRow.id.in_(ids)))
    return {row.id: row for row in rows}
