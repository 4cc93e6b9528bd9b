"""The batch prediction job: read the model and the dataset, predict in a warm child
process under the fit's time and memory limits, store the Parquet file
(``service.jobs.targeted`` carries it through).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.batches import repository as batches
from service.batches.work import KIND, BatchOutcome, BatchPredictionWork
from service.datasets.repository import get_dataset
from service.db.models import JobRow
from service.jobs import repository as jobs
from service.jobs.kinds import JobKind
from service.jobs.targeted import Target, run_targeted
from service.jobs.tasks import TaskContext
from service.models import repository as models


def _store(session: Session, batch_id: str, result: BatchOutcome) -> None:
    batches.store_result(session, batch_id, result.n_rows, result.parquet)


TARGET = Target(
    noun="batch prediction", slug="prediction",
    invalid_title="The dataset could not be predicted",
    undone="before its predictions were made",
    mark_queued=batches.mark_queued, mark_failed=batches.mark_failed, store=_store,
    hints={"timeout": " Score the dataset in parts or raise MIXEDFIT_FIT_TIMEOUT_SECONDS.",
           "memory": " Score the dataset in parts or raise MIXEDFIT_FIT_MEMORY_BYTES."})


def run_batch_job(job: JobRow, ctx: TaskContext, _claimed: object = None) -> None:
    run_targeted(job, ctx, TARGET, lambda: _load_work(job, ctx))


def _load_work(job: JobRow, ctx: TaskContext) -> BatchPredictionWork | None:
    with ctx.session_factory.begin() as session:
        batch = batches.get(session, job.target_id)
        if batch is None or batch.status in batches.FINISHED:
            jobs.complete(session, job.id, ctx.worker_id)
            return None
        model = models.get_model(session, batch.model_id)
        if model is None or model.prediction_state is None:
            TARGET.gone(session, job, ctx.worker_id, "model", batch.model_id)
            return None
        dataset = get_dataset(session, batch.dataset_id, with_content=True)
        if dataset is None:
            TARGET.gone(session, job, ctx.worker_id, "dataset", batch.dataset_id)
            return None
        return BatchPredictionWork(state=model.prediction_state, parquet=dataset.content,
                                   include_random_effects=batch.include_random_effects,
                                   new_levels=batch.new_levels)


BATCH_PREDICTION = JobKind(KIND, run=run_batch_job,
                           claimed=lambda session, job: batches.mark_running(session,
                                                                             job.target_id),
                           abandoned=TARGET.abandoned)
