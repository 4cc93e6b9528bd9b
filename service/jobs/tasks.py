"""The fit task: load a model's data, fit it in a child process, store the outcome.

Transactions stay short and the fit runs outside any of them. The outcome is written in one
transaction that first checks, with the job row locked, that this worker still holds the
job; the model repository then refuses a second result. So a job that runs twice (its first
worker died after fitting but before committing, or lost its lease) stores one result.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.datasets.repository import get_dataset
from service.db.models import JobRow
from service.jobs import problems, retry
from service.jobs import repository as jobs
from service.jobs.child import FitRequest
from service.jobs.runner import FitOutcome, run_fit
from service.models import repository as models
from service.settings import Settings

log = logging.getLogger(__name__)

STOP_CHECK_SECONDS = 0.5


@dataclass
class TaskContext:
    settings: Settings
    session_factory: sessionmaker[Session]
    worker_id: str
    stop: threading.Event


def run_fit_job(job: JobRow, ctx: TaskContext) -> None:
    """Carry out one claimed fit job to its end (stored, failed, requeued or released)."""
    request = retry.while_unavailable(lambda: _load_request(job, ctx),
                                      f"load the data of job {job.id}", ctx.stop)
    if request is None:
        return
    lost = threading.Event()
    renewal_failing = threading.Event()
    renew_every = ctx.settings.lease_seconds / 3
    last_renewal = time.monotonic()

    def keep_lease() -> bool:
        nonlocal last_renewal
        if ctx.stop.is_set():
            return False
        if time.monotonic() - last_renewal < renew_every:
            return True
        try:
            with ctx.session_factory.begin() as session:
                held = jobs.renew_lease(session, job.id, ctx.worker_id,
                                        ctx.settings.lease_seconds)
        except Exception:
            # a database outage should not cost a long fit: fit on, and if the lease runs
            # out meanwhile and another worker takes the job, the write at the end finds it
            # taken and discards this result; said once per outage, tried every tick
            if not renewal_failing.is_set():
                renewal_failing.set()
                log.warning("job %s: lease renewal failed; fitting on", job.id, exc_info=True)
            return True
        if renewal_failing.is_set():
            renewal_failing.clear()
            log.info("job %s: lease renewed again", job.id)
        last_renewal = time.monotonic()
        if not held:
            lost.set()
        return held

    started = time.monotonic()
    outcome = run_fit(
        request,
        timeout_seconds=ctx.settings.fit_timeout_seconds,
        memory_bytes=ctx.settings.fit_memory_bytes,
        # look at the stop flag often, so that shutting down does not wait for a renewal
        tick_seconds=min(renew_every, STOP_CHECK_SECONDS),
        on_tick=keep_lease,
    )
    log.info("job %s: the fit of model %s ended after %.2f s: %s%s", job.id, job.target_id,
             time.monotonic() - started, outcome.status,
             f" ({outcome.message})" if outcome.message else "")
    if outcome.status == "cancelled":
        if lost.is_set():
            log.warning("job %s: lease lost to another worker; result discarded", job.id)
        else:
            _release(job, ctx)
        return
    record_outcome(job, outcome, ctx)


def _load_request(job: JobRow, ctx: TaskContext) -> FitRequest | None:
    with ctx.session_factory.begin() as session:
        model = models.get_model(session, job.target_id)
        if model is None:
            jobs.fail(session, job.id, ctx.worker_id, "the model was deleted", retry=False)
            return None
        if model.status == "succeeded":
            # another job for this model has stored its result already
            jobs.complete(session, job.id, ctx.worker_id)
            return None
        dataset = get_dataset(session, model.dataset_id, with_content=True)
        if dataset is None:
            models.mark_failed(session, model.id, problems.dataset_missing(model.dataset_id))
            jobs.fail(session, job.id, ctx.worker_id, "the dataset was deleted", retry=False)
            return None
        return FitRequest(formula=model.formula, method=model.method, parquet=dataset.content,
                          pool=True if model.pool is None else model.pool)


# outcomes that another attempt would repeat: never retried
DETERMINISTIC = frozenset({"timeout", "memory"})


def record_outcome(job: JobRow, outcome: FitOutcome, ctx: TaskContext) -> None:
    """Store the outcome, waiting out a database outage: a finished fit is not thrown away."""

    def write() -> None:
        try:
            with ctx.session_factory.begin() as session:
                _write_outcome(session, job, outcome, ctx.worker_id)
        except IntegrityError:
            # another writer's result rows are there already: keep them, close this job
            log.warning("job %s: result already stored by another attempt", job.id)
            with ctx.session_factory.begin() as session:
                jobs.complete(session, job.id, ctx.worker_id)

    retry.while_unavailable(write, f"store the outcome of job {job.id}", ctx.stop)


def _write_outcome(session: Session, job: JobRow, outcome: FitOutcome, worker_id: str) -> None:
    if jobs.lock_if_held(session, job.id, worker_id) is None:
        log.warning("job %s: no longer held by %s; outcome discarded", job.id, worker_id)
        return
    model_id = job.target_id
    if outcome.status == "succeeded":
        assert outcome.fitted is not None
        if not models.store_fit_result(session, model_id, outcome.fitted):
            log.warning("job %s: model %s already has a result", job.id, model_id)
        else:
            log.info("job %s: model %s fitted, result stored", job.id, model_id)
        jobs.complete(session, job.id, worker_id)
        return
    if outcome.status == "invalid":
        models.mark_failed(session, model_id,
                           problems.fit_failed(outcome.error_type, outcome.message))
        jobs.fail(session, job.id, worker_id, outcome.message, retry=False)
        return
    # a fit that ran out of time or memory does so again on the same data and formula:
    # failed at once; a crash (of the fit process) may be the machine's, so it is retried
    deterministic = outcome.status in DETERMINISTIC
    status = jobs.fail(session, job.id, worker_id, outcome.message, retry=not deterministic)
    log.warning("job %s attempt %d: %s (%s)", job.id, job.attempts, outcome.message, status)
    if status == "failed":
        models.mark_failed(session, model_id,
                           problems.fit_aborted(outcome.status, outcome.message, job.attempts))
    else:
        models.mark_queued(session, model_id)


def _release(job: JobRow, ctx: TaskContext) -> None:
    # no retry: the worker is stopping; if the database is down the lease runs out instead
    with ctx.session_factory.begin() as session:
        if jobs.release(session, job.id, ctx.worker_id):
            models.mark_queued(session, job.target_id)
    log.info("job %s released: the worker is stopping", job.id)


def fail_abandoned(session: Session, max_recoveries: int) -> None:
    """Fail jobs whose workers kept dying (no recovery left), and their models."""
    for job in jobs.take_exhausted(session, max_recoveries=max_recoveries):
        if job.kind == "fit":
            models.mark_failed(session, job.target_id, problems.workers_lost(
                job.recoveries + 1, max_recoveries, job.attempts))
