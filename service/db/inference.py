"""Storage of inference on stored models (issue 12): the ``intervals`` table.

Kept beside ``service.db.models`` rather than in it: its row class is Tenanted like every
client resource, so ``service.db.tenancy`` scopes it the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.models import Base, Tenanted, UTCDateTime


class IntervalRow(Tenanted, Base):
    """Confidence intervals of a stored model (R's ``confint``).

    A Wald (or lm t) interval is computed from the stored result when requested and stored
    finished; a profile or bootstrap one is meant to be queued and run as a job, which is
    why the row has a status, ``progress`` (``{"done", "total"}`` simulations) and an error.
    ``result`` is ``{"method", "level", "rows": [{"parm", "lower", "upper"}]}``.
    """

    __tablename__ = "intervals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # no foreign key, as for comparisons: the interval is read through its model's id
    model_id: Mapped[str] = mapped_column(String(36), index=True)
    method: Mapped[str] = mapped_column(String(16))
    level: Mapped[float] = mapped_column(Float)
    nsim: Mapped[int | None] = mapped_column(Integer)
    seed: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
