"""Use cases of batch predictions: queue one, read it, read its predictions."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from service.batches import repository as batches
from service.batches.work import KIND
from service.datasets.repository import get_dataset
from service.db.batches import PredictionBatchRow
from service.db.models import utcnow
from service.errors import Conflict, NotFound
from service.jobs import repository as jobs
from service.models import service as models
from service.models.schemas import PredictionRequest


def create_batch(session: Session, model_id: str, spec: PredictionRequest,
                 max_attempts: int) -> PredictionBatchRow:
    """Queue the scoring of a stored dataset by a succeeded model (the caller's own)."""
    model = models.model_version(session, model_id)
    if model.status != "succeeded":
        raise Conflict(f"Model {model.id} is {model.status}; predictions need a succeeded "
                       f"fit. Wait with GET /v1/models/{model.id}?wait=30.",
                       model_status=model.status)
    assert spec.dataset_id is not None
    dataset = get_dataset(session, spec.dataset_id)
    if dataset is None:
        raise NotFound(f"There is no dataset with id {spec.dataset_id!r}.")
    row = batches.add(session, PredictionBatchRow(
        id=str(uuid.uuid4()), model_id=model.id, dataset_id=dataset.id,
        include_random_effects=spec.include_random_effects, new_levels=spec.new_levels,
        status="queued", created_at=utcnow()))
    jobs.enqueue(session, KIND, row.id, max_attempts)
    return row


def get_batch(session: Session, model_id: str, batch_id: str, *,
              with_content: bool = False) -> PredictionBatchRow:
    models.model_version(session, model_id)  # 404 for an unknown model first
    row = batches.get(session, batch_id, with_content=with_content)
    if row is None or row.model_id != model_id:
        raise NotFound(f"Model {model_id} has no batch prediction with id {batch_id!r}.")
    return row


def succeeded_batch(session: Session, model_id: str, batch_id: str) -> PredictionBatchRow:
    """A succeeded batch, without its predictions (409 while it is not succeeded)."""
    row = get_batch(session, model_id, batch_id)
    if row.status != "succeeded" or row.finished_at is None:
        hint = ("see its 'error'" if row.status == "failed" else
                f"wait with GET /v1/models/{model_id}/predictions/{batch_id}?wait=30")
        raise Conflict(f"Batch prediction {batch_id} is {row.status}; {hint}.",
                       batch_status=row.status)
    return row


def predictions_of(session: Session, batch: PredictionBatchRow) -> bytes:
    """A succeeded batch's Parquet file."""
    row = batches.get(session, batch.id, with_content=True)
    if row is None or row.content is None:
        raise NotFound(f"Batch prediction {batch.id} is gone.")
    return row.content
