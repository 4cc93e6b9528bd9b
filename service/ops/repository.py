"""SQL behind the metrics that are read from the database at scrape time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import ModelRow


def fit_durations(session: Session, limit: int = 10_000) -> list[float]:
    """Seconds from start to finish of the most recently finished fits."""
    statement = (
        select(ModelRow.started_at, ModelRow.finished_at)
        .where(ModelRow.started_at.is_not(None), ModelRow.finished_at.is_not(None))
        .order_by(ModelRow.finished_at.desc())
        .limit(limit)
    )
    out = []
    for started, finished in session.execute(statement):
        if isinstance(started, datetime) and isinstance(finished, datetime):
            out.append(max(0.0, (finished - started).total_seconds()))
    return out
