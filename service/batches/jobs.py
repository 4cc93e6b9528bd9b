"""The batch prediction job: read the model and the dataset, predict in a warm child
process under the fit's time and memory limits, store the Parquet file.

As for fits (``service.jobs.tasks``), transactions stay short, the work runs outside any of
them, and the outcome is written only while this worker still holds the job, once.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from service.batches import repository as batches
from service.batches.work import KIND, BatchOutcome, BatchPredictionWork
from service.datasets.repository import get_dataset
from service.db.models import JobRow
from service.jobs import repository as jobs
from service.jobs import retry
from service.jobs.kinds import JobKind
from service.jobs.problems import problem
from service.jobs.runner import WorkOutcome
from service.jobs.tasks import DETERMINISTIC, TaskContext
from service.models import repository as models

log = logging.getLogger("service.jobs.tasks")



_ABORTED = {
    "timeout": ("prediction-timeout", "The batch prediction exceeded its time limit", 422,
                " Score the dataset in parts or raise MIXEDFIT_FIT_TIMEOUT_SECONDS."),
    "memory": ("prediction-memory-limit", "The batch prediction exceeded its memory limit",
               422, " Score the dataset in parts or raise MIXEDFIT_FIT_MEMORY_BYTES."),
    "crashed": ("prediction-crashed", "The batch prediction's process crashed", 500, ""),
}


def run_batch_job(job: JobRow, ctx: TaskContext) -> None:
    ran = ctx.work_on(job, lambda: _load_work(job, ctx))
    if ran is None:
        return
    outcome, lease = ran
    if outcome.status == "cancelled":
        if not lease.lost.is_set():
            with ctx.session_factory.begin() as session:
                if jobs.release(session, job.id, ctx.worker_id):
                    batches.mark_queued(session, job.target_id)
        return

    def write() -> None:
        with ctx.session_factory.begin() as session:
            _write_outcome(session, job, outcome, ctx.worker_id)

    retry.while_unavailable(write, f"store the outcome of job {job.id}", ctx.stop)


def _load_work(job: JobRow, ctx: TaskContext) -> BatchPredictionWork | None:
    with ctx.session_factory.begin() as session:
        batch = batches.get(session, job.target_id)
        if batch is None or batch.status in batches.FINISHED:
            jobs.complete(session, job.id, ctx.worker_id)
            return None
        model = models.get_model(session, batch.model_id)
        if model is None or model.prediction_state is None:
            _gone(session, job, ctx.worker_id, "model", batch.model_id)
            return None
        dataset = get_dataset(session, batch.dataset_id, with_content=True)
        if dataset is None:
            _gone(session, job, ctx.worker_id, "dataset", batch.dataset_id)
            return None
        return BatchPredictionWork(state=model.prediction_state, parquet=dataset.content,
                                   include_random_effects=batch.include_random_effects,
                                   new_levels=batch.new_levels)


def _gone(session: Session, job: JobRow, worker_id: str, what: str, which: str) -> None:
    batches.mark_failed(session, job.target_id, problem(
        f"{what}-not-found", f"The {what} is gone", 422,
        f"The {what} {which} was deleted before its predictions were made."))
    jobs.fail(session, job.id, worker_id, f"the {what} was deleted", retry=False)


def _write_outcome(session: Session, job: JobRow, outcome: WorkOutcome, worker_id: str) -> None:
    if jobs.lock_if_held(session, job.id, worker_id) is None:
        log.warning("job %s: no longer held by %s; outcome discarded", job.id, worker_id)
        return
    batch_id = job.target_id
    if outcome.status == "succeeded":
        result: BatchOutcome = outcome.value
        batches.store_result(session, batch_id, result.n_rows, result.parquet)
        jobs.complete(session, job.id, worker_id)
        return
    if outcome.status == "invalid":
        batches.mark_failed(session, batch_id, problem(
            "prediction-failed", "The dataset could not be predicted", 422,
            outcome.message[:1].upper() + outcome.message[1:] + ".",
            error_type=outcome.error_type))
        jobs.fail(session, job.id, worker_id, outcome.message, retry=False)
        return
    # as for fits: time and memory are deterministic, a crash may be the machine's
    status = jobs.fail(session, job.id, worker_id, outcome.message,
                       retry=outcome.status not in DETERMINISTIC)
    if status == "failed":
        batches.mark_failed(session, batch_id, _aborted(outcome))
    else:
        batches.mark_queued(session, batch_id)


def _aborted(outcome: WorkOutcome) -> dict[str, Any]:
    slug, title, status, hint = _ABORTED.get(outcome.status, _ABORTED["crashed"])
    return problem(slug, title, status,
                   outcome.message[:1].upper() + outcome.message[1:] + "." + hint)


def _abandoned(session: Session, job: JobRow, max_recoveries: int) -> None:
    batches.mark_failed(session, job.target_id, problem(
        "prediction-abandoned", "The workers running the batch prediction kept dying", 500,
        f"The worker running the batch prediction stopped before it finished "
        f"{job.recoveries + 1} times; it was not tried again (MIXEDFIT_MAX_RECOVERIES = "
        f"{max_recoveries})."))


BATCH_PREDICTION = JobKind(KIND, run=run_batch_job,
                           claimed=lambda session, job: batches.mark_running(session,
                                                                             job.target_id),
                           abandoned=_abandoned)
