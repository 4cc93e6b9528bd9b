"""SQL for intervals (tenant-scoped by the session, as every Tenanted table). Every
function runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.db.ids import can_exist
from service.db.inference import IntervalRow
from service.db.models import utcnow

FINISHED = ("succeeded", "failed")


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


def get(session: Session, interval_id: str) -> IntervalRow | None:
    """The interval a job works for, by id alone."""
    if not can_exist(interval_id):
        return None
    return session.get(IntervalRow, interval_id)


def finished_among(session: Session, interval_ids: Collection[str]) -> set[str]:
    """Which of ``interval_ids`` have finished (ids and statuses only)."""
    ids = [interval_id for interval_id in interval_ids if can_exist(interval_id)]
    if not ids:
        return set()
    statement = select(IntervalRow.id).where(IntervalRow.id.in_(ids),
                                             IntervalRow.status.in_(FINISHED))
    return set(session.scalars(statement))


def mark_running(session: Session, interval_id: str) -> None:
    row = get(session, interval_id)
    if row is not None and row.status not in FINISHED:
        row.status = "running"


def mark_queued(session: Session, interval_id: str) -> None:
    row = get(session, interval_id)
    if row is not None and row.status == "running":
        row.status = "queued"


def set_progress(session: Session, interval_id: str, done: int, total: int) -> None:
    """Record how far a running interval has come (one UPDATE; nothing once finished)."""
    session.execute(update(IntervalRow).where(
        IntervalRow.id == interval_id, IntervalRow.status == "running",
    ).values(progress={"done": done, "total": total}))


def store_result(session: Session, interval_id: str, result: dict[str, Any]) -> bool:
    """Store the table once; False when the interval has finished already (or is gone)."""
    row = get(session, interval_id)
    if row is None or row.status in FINISHED:
        return False
    row.status = "succeeded"
    row.result = result
    row.error = None
    if row.progress is not None:
        total = int(row.progress.get("total", 0))
        row.progress = {"done": total, "total": total}
    row.finished_at = utcnow()
    return True


def mark_failed(session: Session, interval_id: str, problem: dict[str, Any]) -> None:
    row = get(session, interval_id)
    if row is None or row.status in FINISHED:
        return
    row.status = "failed"
    row.error = problem
    row.finished_at = utcnow()
