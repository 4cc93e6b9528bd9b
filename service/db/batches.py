"""Storage of batch predictions (issue 9): the ``prediction_batches`` table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, deferred, mapped_column

from service.db.models import Base, Tenanted, UTCDateTime


class PredictionBatchRow(Tenanted, Base):
    """A stored dataset scored by a stored model, as a job.

    ``content`` is the predictions as a Parquet file of one column, ``prediction``, in the
    dataset's row order (null where R's predict gives NA); deferred, so reading a batch's
    status never loads it.
    """

    __tablename__ = "prediction_batches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # no foreign keys, as for intervals: a batch is read through its model's id
    model_id: Mapped[str] = mapped_column(String(36), index=True)
    dataset_id: Mapped[str] = mapped_column(String(36))
    include_random_effects: Mapped[bool] = mapped_column(Boolean)
    new_levels: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # queued/running/succeeded/failed
    n_rows: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    content: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
