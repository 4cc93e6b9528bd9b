"""SQL for intervals (tenant-scoped by the session, as every Tenanted table)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.db.ids import can_exist
from service.db.inference import IntervalRow


def add_interval(session: Session, row: IntervalRow) -> IntervalRow:
    session.add(row)
    session.flush()
    return row


def get_interval(session: Session, model_id: str, interval_id: str) -> IntervalRow | None:
    """The interval with this id of this model (None if absent or another tenant's)."""
    if not (can_exist(interval_id) and can_exist(model_id)):
        return None
    row = session.get(IntervalRow, interval_id)
    if row is None or row.model_id != model_id:
        return None
    return row
