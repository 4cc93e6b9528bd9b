"""What a worker does with each kind of job.

The jobs table is one queue for every kind of work that runs in a worker's child process
(fits, batch predictions, ...): ``kind`` names it and ``target_id`` the row the job works
for. Each kind says how its target learns that the job was claimed, how the job runs, and
what its target records when its workers kept dying (no recovery left).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from service.db.models import JobRow

if TYPE_CHECKING:
    from service.jobs.tasks import TaskContext


def _nothing(*_args: object) -> None:
    return None


@dataclass(frozen=True)
class JobKind:
    name: str
    # carries the claimed job to its end (stored, failed, requeued or released), given what
    # ``claimed`` returned
    run: Callable[[JobRow, TaskContext, Any], None]
    # in the claim's transaction: the target marked running; what it returns (a fit: its
    # loaded work, read in that same transaction) is handed to ``run``
    claimed: Callable[[Session, JobRow], Any] = _nothing
    # (session, job, max_recoveries): the job was failed because its workers kept dying
    abandoned: Callable[[Session, JobRow, int], None] = _nothing


@cache
def job_kinds() -> dict[str, JobKind]:
    """Every kind a worker runs, by name (imported on first use: the kinds' modules import
    the repositories of their targets)."""
    from service.batches.jobs import BATCH_PREDICTION
    from service.inference.jobs import INTERVAL
    from service.jobs.tasks import FIT

    return {kind.name: kind for kind in (FIT, BATCH_PREDICTION, INTERVAL)}


def job_kind(name: str) -> JobKind | None:
    return job_kinds().get(name)
