"""Response bodies of /v1/models/{id}/predictions/{batch_id}."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from service.db.batches import PredictionBatchRow
from service.errors import Problem
from service.models.schemas import NewLevels

BatchStatus = Literal["queued", "running", "succeeded", "failed"]


class BatchLinks(BaseModel):
    self: str
    result: str = Field(description="The predictions, once succeeded: Parquet by default, "
                                    "CSV with Accept: text/csv")


class PredictionBatch(BaseModel):
    """A stored dataset scored by a model, as a job."""

    id: str
    model_id: str
    dataset_id: str
    status: BatchStatus
    include_random_effects: bool
    new_levels: NewLevels
    n_rows: int | None = Field(description="Rows predicted (the dataset's), once succeeded")
    size_bytes: int | None = Field(description="Size of the Parquet result, once succeeded")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: Problem | None = Field(description="Why the batch failed (RFC 9457)")
    links: BatchLinks

    @classmethod
    def from_row(cls, row: PredictionBatchRow) -> PredictionBatch:
        path = f"/v1/models/{row.model_id}/predictions/{row.id}"
        new_levels: NewLevels = "error" if row.new_levels == "error" else "population"
        return cls(id=row.id, model_id=row.model_id, dataset_id=row.dataset_id,
                   status=row.status,  # type: ignore[arg-type]
                   include_random_effects=row.include_random_effects, new_levels=new_levels,
                   n_rows=row.n_rows, size_bytes=row.size_bytes, created_at=row.created_at,
                   started_at=row.started_at, finished_at=row.finished_at,
                   error=Problem.model_validate(row.error) if row.error else None,
                   links=BatchLinks(self=path, result=f"{path}/result"))
