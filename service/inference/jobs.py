"""The interval job: read the model and its dataset, profile or bootstrap it in a warm
child process under the fit's time and memory limits, store the table
(``service.jobs.targeted`` carries it through).

The progress the child reports (simulations done, or parameters profiled) is written to
the interval as it arrives, at most every ``PROGRESS_SECONDS``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.datasets.repository import get_dataset
from service.db.models import JobRow
from service.inference import repository as intervals
from service.inference.work import KIND, IntervalWork
from service.jobs import repository as jobs
from service.jobs import retry
from service.jobs.kinds import JobKind
from service.jobs.targeted import Target, run_targeted
from service.jobs.tasks import TaskContext
from service.models import repository as models
from service.stats.inference import Intervals

log = logging.getLogger("service.jobs.tasks")

# the worker stores a running interval's progress at most this often
PROGRESS_SECONDS = 0.5


def _store(session: Session, interval_id: str, table: Intervals) -> None:
    intervals.store_result(session, interval_id, asdict(table))


TARGET = Target(
    noun="interval computation", slug="intervals",
    invalid_title="The intervals could not be computed",
    undone="before the intervals were computed",
    mark_queued=intervals.mark_queued, mark_failed=intervals.mark_failed, store=_store,
    hints={"timeout": " Ask for fewer simulations (nsim) or raise "
                      "MIXEDFIT_FIT_TIMEOUT_SECONDS.",
           "memory": " Raise MIXEDFIT_FIT_MEMORY_BYTES."})


class ProgressWriter:
    """The runner's ``on_progress`` for one interval: stores (done, total) at most every
    ``PROGRESS_SECONDS``; a database that does not answer costs a report, not the job."""

    def __init__(self, ctx: TaskContext, interval_id: str) -> None:
        self._ctx = ctx
        self._interval_id = interval_id
        self._last = -PROGRESS_SECONDS

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < PROGRESS_SECONDS:
            return
        self._last = now
        try:
            with self._ctx.session_factory.begin() as session:
                intervals.set_progress(session, self._interval_id, done, total)
        except SQLAlchemyError as error:
            log.warning("interval %s: progress not stored (%s)", self._interval_id,
                        retry.describe(error))


def run_interval_job(job: JobRow, ctx: TaskContext, _claimed: object = None) -> None:
    run_targeted(job, ctx, TARGET, lambda: _load_work(job, ctx),
                 ProgressWriter(ctx, job.target_id))


def _load_work(job: JobRow, ctx: TaskContext) -> IntervalWork | None:
    with ctx.session_factory.begin() as session:
        interval = intervals.get(session, job.target_id)
        if interval is None or interval.status in intervals.FINISHED:
            jobs.complete(session, job.id, ctx.worker_id)
            return None
        model = models.get_model(session, interval.model_id)
        if model is None:
            TARGET.gone(session, job, ctx.worker_id, "model", interval.model_id)
            return None
        dataset = get_dataset(session, model.dataset_id, with_content=True)
        if dataset is None:
            TARGET.gone(session, job, ctx.worker_id, "dataset", model.dataset_id)
            return None
        return IntervalWork(formula=model.formula, fit_method=model.method,
                            parquet=dataset.content, method=interval.method,
                            level=interval.level, nsim=interval.nsim or 0,
                            seed=interval.seed or 0, contrasts=model.contrasts,
                            weights=model.weights)


INTERVAL = JobKind(KIND, run=run_interval_job,
                   claimed=lambda session, job: intervals.mark_running(session,
                                                                       job.target_id),
                   abandoned=TARGET.abandoned)
