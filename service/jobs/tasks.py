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
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import ObjectDeletedError

from service.datasets.repository import get_dataset
from service.db.models import DatasetRow, JobRow, ModelRow
from service.jobs import problems, retry
from service.jobs import repository as jobs
from service.jobs.child import ChildWork, FitRequest
from service.jobs.fit_end import end_succeeded_fit
from service.jobs.kinds import JobKind, job_kind
from service.jobs.lease import LeaseKeeper
from service.jobs.runner import OnProgress, WorkOutcome, run_work, warm_holds
from service.models import repository as models
from service.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class TaskContext:
    settings: Settings
    session_factory: sessionmaker[Session]
    worker_id: str
    stop: threading.Event

    def lease(self, job: JobRow) -> LeaseKeeper:
        """The keeper of ``job``'s lease while its work runs (the runner's ``on_tick``)."""
        return LeaseKeeper(job, self.session_factory, self.worker_id,
                           self.settings.lease_seconds, self.stop)

    def work_on(self, job: JobRow, load: Callable[[], ChildWork | None],
                on_progress: OnProgress | None = None,
                with_data: Callable[[], ChildWork] | None = None,
                ) -> tuple[WorkOutcome, LeaseKeeper] | None:
        """Load the job's work (``load``, waiting out a database outage; None: nothing to
        do), run it in this thread's warm process under the fit's limits while keeping the
        lease (passing the progress it reports to ``on_progress``), and log how it ended.
        ``with_data``: the work with its dataset's bytes, for a process that turns out not
        to hold them (``runner.run_work``), loaded the same way."""
        work = retry.while_unavailable(load, f"load the data of job {job.id}", self.stop)
        if work is None:
            return None
        lease = self.lease(job)
        started = time.monotonic()
        reload = None if with_data is None else (lambda: retry.while_unavailable(
            with_data, f"load the data of job {job.id}", self.stop))
        outcome = run_work(work, timeout_seconds=self.settings.fit_timeout_seconds,
                           memory_bytes=self.settings.fit_memory_bytes,
                           tick_seconds=lease.tick_seconds, on_tick=lease.tick,
                           on_progress=on_progress, with_data=reload)
        log.info("job %s: the %s of %s ended after %.2f s: %s%s", job.id, work.label,
                 job.target_id, time.monotonic() - started, outcome.status,
                 f" ({outcome.message})" if outcome.message else "")
        return outcome, lease


def run_fit_job(job: JobRow, ctx: TaskContext, request: FitRequest | None) -> None:
    """Carry out one claimed fit job to its end (stored, failed, requeued or released);
    ``request``: the fit as its claim read it (None: the claim ended the job already)."""
    if request is None:
        return
    ran = ctx.work_on(job, lambda: request,
                      with_data=lambda: _with_content(request, ctx.session_factory))
    if ran is None:
        return
    outcome, lease = ran
    if outcome.status == "cancelled":
        if lease.lost.is_set():
            log.warning("job %s: lease lost to another worker; result discarded", job.id)
        else:
            release(job, ctx)
        return
    record_outcome(job, outcome, ctx)


def _claimed_fit(session: Session, job: JobRow) -> FitRequest | None:
    """In the claim's transaction: the model marked running and its fit read (one
    transaction, not two: a small fit's round trip is made of such). None: there is
    nothing to fit (the model or its dataset is gone, or another job stored its result),
    and the job is ended here. The dataset's bytes are read only when this thread's warm
    process does not keep its frame already."""
    read = models.get_model_and_dataset(session, job.target_id)  # one read, not two
    if read is None:
        jobs.fail(session, job.id, job.lease_owner or "", "the model was deleted", retry=False)
        return None
    return claimed_fit_of(session, job, *read)


def claimed_fit_of(session: Session, job: JobRow, model: ModelRow,
                   dataset: DatasetRow | None) -> FitRequest | None:
    """``_claimed_fit`` once the model and its dataset (None: deleted) are read."""
    worker_id = job.lease_owner or ""
    if model.status == "succeeded":
        # another job for this model has stored its result already
        jobs.complete(session, job.id, worker_id)
        return None
    content = None
    if dataset is not None and not warm_holds(model.dataset_id):
        # the bytes (deferred: a read of their own) only when this thread's warm process
        # does not keep the dataset's frame; on PostgreSQL that read sees a delete committed
        # since the joined one, and finds no row
        try:
            content = dataset.content
        except ObjectDeletedError:
            dataset = None
    if dataset is None:
        models.mark_failed(session, model.id, problems.dataset_missing(model.dataset_id))
        jobs.fail(session, job.id, worker_id, "the dataset was deleted", retry=False)
        return None
    models.mark_row_running(model)
    return fit_request(model, content)


def fit_request(model: ModelRow, parquet: bytes | None) -> FitRequest:
    """The fit of ``model`` for a warm process: with its dataset's bytes, or None when
    the process keeps that dataset's frame."""
    return FitRequest(formula=model.formula, method=model.method, parquet=parquet,
                      pool=True if model.pool is None else model.pool,
                      contrasts=model.contrasts, weights=model.weights,
                      dataset_key=model.dataset_id)


def run_handed_fit(job: JobRow, ctx: TaskContext, request: FitRequest) -> None:
    """``run_fit_job`` for a fit handed to this worker with its job already claimed
    (``request``: without the dataset's bytes, which are read here unless this thread's
    warm process keeps its frame)."""
    key = request.dataset_key
    if key is None or not warm_holds(key):
        request = retry.while_unavailable(
            lambda: _with_content(request, ctx.session_factory),
            f"load the data of job {job.id}", ctx.stop)
    run_fit_job(job, ctx, request)


def _with_content(request: FitRequest, session_factory: sessionmaker[Session]) -> FitRequest:
    """``request`` with its dataset's bytes (the frame was not where it was thought)."""
    with session_factory.begin() as session:
        dataset = get_dataset(session, request.dataset_key or "", with_content=True)
        if dataset is None:
            raise LookupError(f"the dataset {request.dataset_key} of the fit is gone")
        return replace(request, parquet=dataset.content)


# outcomes that another attempt would repeat: never retried
DETERMINISTIC = frozenset({"timeout", "memory"})


def record_outcome(job: JobRow, outcome: WorkOutcome, ctx: TaskContext) -> None:
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


def _write_outcome(session: Session, job: JobRow, outcome: WorkOutcome, worker_id: str) -> None:
    model_id = job.target_id
    if outcome.status == "succeeded":
        # the job ended first, in the statement that checks (and locks) that this worker
        # still holds it: nothing is stored otherwise
        held, stored = end_succeeded_fit(session, job.id, worker_id, model_id, outcome.value)
        if not held:
            log.warning("job %s: no longer held by %s; outcome discarded", job.id, worker_id)
        elif not stored:
            log.warning("job %s: model %s already has a result", job.id, model_id)
        else:
            log.info("job %s: model %s fitted, result stored", job.id, model_id)
        return
    if jobs.lock_if_held(session, job.id, worker_id) is None:
        log.warning("job %s: no longer held by %s; outcome discarded", job.id, worker_id)
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


def release(job: JobRow, ctx: TaskContext) -> None:
    """Give a job this worker holds back to the queue (it is stopping)."""
    # no retry: the worker is stopping; if the database is down the lease runs out instead
    with ctx.session_factory.begin() as session:
        if jobs.release(session, job.id, ctx.worker_id):
            models.mark_queued(session, job.target_id)
    log.info("job %s released: the worker is stopping", job.id)


def fail_abandoned(session: Session, max_recoveries: int) -> None:
    """Fail jobs whose workers kept dying (no recovery left), and their targets."""
    for job in jobs.take_exhausted(session, max_recoveries=max_recoveries):
        kind = job_kind(job.kind)
        if kind is not None:
            kind.abandoned(session, job, max_recoveries)


def _fit_abandoned(session: Session, job: JobRow, max_recoveries: int) -> None:
    models.mark_failed(session, job.target_id, problems.workers_lost(
        job.recoveries + 1, max_recoveries, job.attempts))


FIT = JobKind("fit", run=run_fit_job, claimed=_claimed_fit, abandoned=_fit_abandoned)
