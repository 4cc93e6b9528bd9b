"""The course of a job that works for a row of its own (a batch prediction, an interval):
run its work in a warm child, then record on that row how it ended.

Fits have their own, older course (``service.jobs.tasks``); the kinds that came after them
share this one and differ only in their ``Target``: how the row is marked and stored, and
the words of its problem documents. As for fits, transactions stay short, the work runs
outside any of them, and the outcome is written only while this worker still holds the
job, once. A time or memory limit is deterministic (failed at once); a crash may be the
machine's (retried while attempts remain).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from service.db.models import JobRow
from service.jobs import repository as jobs
from service.jobs import retry
from service.jobs.child import ChildWork
from service.jobs.problems import problem
from service.jobs.runner import OnProgress, WorkOutcome
from service.jobs.tasks import DETERMINISTIC, TaskContext

log = logging.getLogger("service.jobs.tasks")


@dataclass(frozen=True)
class Target:
    """How a kind's target row records its job, and how its problems are worded.

    ``noun`` names the work in titles ("batch prediction"), ``slug`` prefixes the problem
    types (``prediction-timeout``), ``invalid_title`` is the title when the statistics
    core refused the input, ``undone`` ends "The dataset ... was deleted" sentences, and
    ``hints`` add a remedy per abort reason (timeout, memory).
    """

    noun: str
    slug: str
    invalid_title: str
    undone: str
    mark_queued: Callable[[Session, str], None]
    mark_failed: Callable[[Session, str, dict[str, Any]], None]
    store: Callable[[Session, str, Any], object]  # (session, target id, the work's value)
    hints: dict[str, str] = field(default_factory=dict)

    def gone(self, session: Session, job: JobRow, worker_id: str, what: str,
             which: str) -> None:
        """The model or dataset the work needs was deleted: failed, not retried."""
        self.mark_failed(session, job.target_id, problem(
            f"{what}-not-found", f"The {what} is gone", 422,
            f"The {what} {which} was deleted {self.undone}."))
        jobs.fail(session, job.id, worker_id, f"the {what} was deleted", retry=False)

    def abandoned(self, session: Session, job: JobRow, max_recoveries: int) -> None:
        """``JobKind.abandoned``: the workers running the job kept dying."""
        self.mark_failed(session, job.target_id, problem(
            f"{self.slug}-abandoned", f"The workers running the {self.noun} kept dying", 500,
            f"The worker running the {self.noun} stopped before it finished "
            f"{job.recoveries + 1} times; it was not tried again (MIXEDFIT_MAX_RECOVERIES = "
            f"{max_recoveries})."))

    def _aborted(self, outcome: WorkOutcome) -> dict[str, Any]:
        slug, title, status = {
            "timeout": ("timeout", f"The {self.noun} exceeded its time limit", 422),
            "memory": ("memory-limit", f"The {self.noun} exceeded its memory limit", 422),
        }.get(outcome.status, ("crashed", f"The {self.noun}'s process crashed", 500))
        return problem(f"{self.slug}-{slug}", title, status,
                       _sentence(outcome.message) + self.hints.get(outcome.status, ""))

    def write_outcome(self, session: Session, job: JobRow, outcome: WorkOutcome,
                      worker_id: str) -> None:
        if jobs.lock_if_held(session, job.id, worker_id) is None:
            log.warning("job %s: no longer held by %s; outcome discarded", job.id, worker_id)
            return
        if outcome.status == "succeeded":
            self.store(session, job.target_id, outcome.value)
            jobs.complete(session, job.id, worker_id)
            return
        if outcome.status == "invalid":
            self.mark_failed(session, job.target_id, problem(
                f"{self.slug}-failed", self.invalid_title, 422, _sentence(outcome.message),
                error_type=outcome.error_type))
            jobs.fail(session, job.id, worker_id, outcome.message, retry=False)
            return
        status = jobs.fail(session, job.id, worker_id, outcome.message,
                           retry=outcome.status not in DETERMINISTIC)
        if status == "failed":
            self.mark_failed(session, job.target_id, self._aborted(outcome))
        else:
            self.mark_queued(session, job.target_id)


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:].rstrip(".") + "."


def run_targeted(job: JobRow, ctx: TaskContext, target: Target,
                 load: Callable[[], ChildWork | None],
                 on_progress: OnProgress | None = None) -> None:
    """Carry a claimed job to its end: run the work ``load`` gives (None: nothing to do),
    then store its outcome, or release the job when the worker is stopping."""
    ran = ctx.work_on(job, load, on_progress)
    if ran is None:
        return
    outcome, lease = ran
    if outcome.status == "cancelled":
        if not lease.lost.is_set():
            with ctx.session_factory.begin() as session:
                if jobs.release(session, job.id, ctx.worker_id):
                    target.mark_queued(session, job.target_id)
        return

    def write() -> None:
        with ctx.session_factory.begin() as session:
            target.write_outcome(session, job, outcome, ctx.worker_id)

    retry.while_unavailable(write, f"store the outcome of job {job.id}", ctx.stop)
