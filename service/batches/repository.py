"""SQL of batch predictions. Every function runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from service.db.batches import PredictionBatchRow
from service.db.ids import can_exist
from service.db.models import utcnow

FINISHED = ("succeeded", "failed")


def add(session: Session, row: PredictionBatchRow) -> PredictionBatchRow:
    session.add(row)
    session.flush()
    return row


def get(session: Session, batch_id: str, *, with_content: bool = False
        ) -> PredictionBatchRow | None:
    if not can_exist(batch_id):
        return None
    statement = select(PredictionBatchRow).where(PredictionBatchRow.id == batch_id)
    if with_content:
        statement = statement.options(undefer(PredictionBatchRow.content))
    return session.scalars(statement).one_or_none()


def finished_among(session: Session, batch_ids: Collection[str]) -> set[str]:
    """Which of ``batch_ids`` have finished (ids and statuses only)."""
    ids = [batch_id for batch_id in batch_ids if can_exist(batch_id)]
    if not ids:
        return set()
    statement = select(PredictionBatchRow.id).where(
        PredictionBatchRow.id.in_(ids), PredictionBatchRow.status.in_(FINISHED))
    return set(session.scalars(statement))


def mark_running(session: Session, batch_id: str) -> None:
    row = get(session, batch_id)
    if row is not None and row.status not in FINISHED:
        row.status = "running"
        row.started_at = utcnow()


def mark_queued(session: Session, batch_id: str) -> None:
    row = get(session, batch_id)
    if row is not None and row.status == "running":
        row.status = "queued"


def store_result(session: Session, batch_id: str, n_rows: int, content: bytes) -> bool:
    """Store the predictions once; False when the batch has finished already (or is gone)."""
    row = get(session, batch_id)
    if row is None or row.status in FINISHED:
        return False
    row.status = "succeeded"
    row.n_rows = n_rows
    row.size_bytes = len(content)
    row.content = content
    row.error = None
    row.finished_at = utcnow()
    return True


def mark_failed(session: Session, batch_id: str, problem: dict[str, Any]) -> None:
    row = get(session, batch_id)
    if row is None or row.status in FINISHED:
        return
    row.status = "failed"
    row.error = problem
    row.finished_at = utcnow()
