"""The queue's SQL: the jobs table is the queue (the pattern of Solid Queue, Oban, River).

A worker claims one job atomically: on PostgreSQL with ``SELECT ... FOR UPDATE SKIP
LOCKED``, on SQLite inside the engine's ``BEGIN IMMEDIATE`` transaction (one writer at a
time). The claim gives the worker a lease that it renews while the job runs.

Two counts keep every job finite without charging the fit for its workers' deaths:

- ``attempts``: a claim of a queued job starts an attempt; the fit spends it (a timeout, a
  memory limit, a crash of its child process, an internal error: the worker requeues the
  job only while attempts remain).
- ``recoveries``: a running job whose lease expired (its worker was killed, crashed or cut
  off) is taken over by the next claim as the same attempt, and counts a recovery instead.
  After ``max_recoveries`` of them, a job that loses its worker once more is failed
  (``take_exhausted``): a job that kills every worker that takes it (the system's
  out-of-memory killer taking the worker, say) still ends.

The lease owner is the claim's token: a worker's late writes (``lock_if_held``,
``renew_lease``, ``fail``, ``release``) are refused once another worker has taken the job
over. Every function runs inside the caller's transaction and never commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningUpdate

from service.db.models import JobRow, utcnow

STATUSES = ("queued", "running", "succeeded", "failed")


@dataclass(frozen=True)
class Lease:
    """A claim made with the job's insert: the worker that holds it, and for how long."""

    worker_id: str
    seconds: float


def enqueue(session: Session, kind: str, target_id: str, max_attempts: int,
            claimed: Lease | None = None) -> JobRow:
    """Queue a job; ``claimed``: insert it already claimed by that worker, as its first
    attempt (as ``claim_next`` would leave it), for a worker that is handed it directly."""
    now = utcnow()
    job = JobRow(id=str(uuid.uuid4()), kind=kind, target_id=target_id, status="queued",
                 attempts=0, max_attempts=max_attempts, created_at=now)
    if claimed is not None:
        job.status, job.attempts, job.started_at = "running", 1, now
        job.lease_owner = claimed.worker_id
        job.lease_expires_at = now + timedelta(seconds=claimed.seconds)
    session.add(job)
    session.flush()
    return job


def _abandoned(now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    """Running, but its worker stopped renewing the lease."""
    return and_(JobRow.status == "running", JobRow.lease_expires_at < now)


# The claim's statements are built once, with the moment and the limit as parameters:
# building a statement costs more than running it (about 70 of 120 microseconds for a
# select by key), and a fit's round trip is made of such.
_CLAIMABLE = or_(and_(JobRow.status == "queued", JobRow.attempts < JobRow.max_attempts),
                 and_(_abandoned(bindparam("now")),
                      JobRow.recoveries < bindparam("max_recoveries")))
_WAITING_BY_TENANT = (select(JobRow.tenant, func.min(JobRow.created_at), func.count())
                      .where(_CLAIMABLE).group_by(JobRow.tenant))
_RUNNING_BY_TENANT = (select(JobRow.tenant, func.count())
                      .where(JobRow.status == "running",
                             JobRow.lease_expires_at >= bindparam("now"))
                      .group_by(JobRow.tenant))


def claim_next(session: Session, worker_id: str, lease_seconds: float, *,
               max_recoveries: int) -> JobRow | None:
    """``claim_next_counted``'s job."""
    return claim_next_counted(session, worker_id, lease_seconds,
                              max_recoveries=max_recoveries)[0]


def claim_next_counted(session: Session, worker_id: str, lease_seconds: float, *,
                       max_recoveries: int) -> tuple[JobRow | None, int]:
    """Claim the next job fairly across tenants; None if there is nothing to claim. With
    it, how many other jobs were claimable when the claim looked (0: the queue is empty
    but for what was queued since, which a listening worker is told of).

    A queued job starts its next attempt; a running job whose lease expired is recovered
    (the same attempt, one more recovery) while it has fewer than ``max_recoveries``.

    Tenants take turns: the tenant with the fewest running jobs goes first, then the one
    whose last claim is oldest (never claimed: first), then the one whose oldest waiting
    job is oldest; within a tenant, its oldest job (queued, or running with an expired
    lease). So one tenant's hundred queued fits do not make another's single fit wait
    behind them. Jobs of the open mode (no tenant) are one more tenant.
    """
    now = utcnow()
    params = {"now": now, "max_recoveries": max_recoveries}
    tenants, waiting = _tenants_in_turn(session, params)
    # First each tenant's oldest job in turn, unless another claimer holds it right now
    # (PostgreSQL: it is claiming it; SKIP LOCKED passes it over and the next tenant gets
    # this claim); when every tenant's oldest is held, the next of each tenant in turn.
    # SQLite renders no locking clause: BEGIN IMMEDIATE already serializes the claim.
    lease = {"worker_id": worker_id, "expires": now + timedelta(seconds=lease_seconds)}
    for oldest_only in (True, False):
        if not oldest_only and waiting <= len(tenants):
            # each tenant had one job, held by another claimer: there is no next one (the
            # loser of two workers woken by the same queued job asks no more)
            break
        for tenant in tenants:
            statement = _CLAIM_OF[tenant is None, oldest_only]
            job = session.scalars(statement, {**params, **lease, "claim_tenant": tenant}
                                  ).one_or_none()
            if job is not None:
                return job, waiting - 1
    return None, waiting


def _claim_of(open_mode: bool, oldest_only: bool) -> ReturningUpdate[JobRow]:
    """Lease a tenant's oldest claimable job in one statement, returning it (none if there
    is none to take): ``oldest_only``, that job or none if another transaction holds it;
    else the oldest that nobody holds. The tenant is the parameter ``claim_tenant``, or the
    open mode's jobs (no tenant). A queued job starts its next attempt; a running one whose
    lease expired is taken over (one more recovery, the same attempt)."""
    # (an UPDATE's parameters may not be named as its table's columns)
    tenant = (JobRow.tenant.is_(None) if open_mode
              else JobRow.tenant == bindparam("claim_tenant"))
    waiting = (select(JobRow.id).where(_CLAIMABLE, tenant)
               .order_by(JobRow.created_at, JobRow.id).limit(1))
    if oldest_only:
        waiting = select(JobRow.id).where(JobRow.id == waiting.scalar_subquery(), _CLAIMABLE)
    # the row locked, or passed over while another claimer holds it (SQLite renders no
    # locking clause: BEGIN IMMEDIATE already serializes the claim); PostgreSQL rechecks
    # the conditions on the row it locks (READ COMMITTED), and the UPDATE once more on
    # the row's newest version, so a job that another claimer took and committed
    # meanwhile is no longer claimable, and the counts start from the committed ones
    locked = waiting.with_for_update(skip_locked=True).scalar_subquery()
    queued = JobRow.status == "queued"
    return (update(JobRow)
            .where(JobRow.id == locked, _CLAIMABLE)
            .values(attempts=case((queued, JobRow.attempts + 1), else_=JobRow.attempts),
                    recoveries=case((queued, JobRow.recoveries),
                                    else_=JobRow.recoveries + 1),
                    status="running", lease_owner=bindparam("worker_id"),
                    lease_expires_at=bindparam("expires"), started_at=bindparam("now"),
                    finished_at=None)
            .returning(JobRow)
            .execution_options(synchronize_session=False, populate_existing=True))


# by (the open mode's jobs, oldest only); built once (see above)
_CLAIM_OF = {(open_mode, oldest_only): _claim_of(open_mode, oldest_only)
             for open_mode in (False, True) for oldest_only in (False, True)}


def _of_tenant(tenant: str | None) -> ColumnElement[bool]:
    return JobRow.tenant.is_(None) if tenant is None else JobRow.tenant == tenant


def _tenants_in_turn(session: Session, params: dict[str, Any]
                     ) -> tuple[list[str | None], int]:
    """The tenants with a claimable job, in the order they take their turns, and how many
    claimable jobs they have in all."""
    waiting: dict[str | None, Any] = {}
    total = 0
    for tenant, oldest, count in session.execute(_WAITING_BY_TENANT, params):
        waiting[tenant] = oldest
        total += count
    if len(waiting) <= 1:
        return list(waiting), total  # one tenant (the usual case): no turns to take
    running = dict(session.execute(_RUNNING_BY_TENANT, params).all())
    # each tenant's newest claim, one index lookup apiece (ix_jobs_tenant_started_at)
    last_claim = {tenant: session.scalar(select(func.max(JobRow.started_at))
                                         .where(_of_tenant(tenant)))
                  for tenant in waiting}
    never = datetime.min.replace(tzinfo=UTC)

    def turn(tenant: str | None) -> tuple[int, datetime, datetime]:
        last = last_claim[tenant]
        return running.get(tenant, 0), last or never, _aware(waiting[tenant])

    return sorted(waiting, key=turn), total


def _aware(value: datetime) -> datetime:
    # aggregates bypass the column type: SQLite hands back naive UTC (or text)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def take_exhausted(session: Session, *, max_recoveries: int) -> list[JobRow]:
    """Fail running jobs whose lease expired with no recovery left, and return them.

    Their workers kept stopping: this is the last of ``max_recoveries`` + 1 workers that
    took the job and stopped before it ended. The caller marks their targets failed.
    """
    now = utcnow()
    statement = (
        select(JobRow)
        .where(_abandoned(now), JobRow.recoveries >= max_recoveries)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    jobs = list(session.scalars(statement))
    for job in jobs:
        _end(job, "failed", (
            f"its workers kept stopping: the job lost its worker {job.recoveries + 1} times "
            "before it ended (killed, crashed or cut off from the database), and after "
            f"{job.recoveries} takeovers no more are allowed"))
    session.flush()
    return jobs


def get_job(session: Session, job_id: str) -> JobRow | None:
    return session.get(JobRow, job_id)


_HELD = (select(JobRow)
         .where(JobRow.id == bindparam("job_id"), JobRow.status == "running",
                JobRow.lease_owner == bindparam("worker_id"))
         .with_for_update())


def lock_if_held(session: Session, job_id: str, worker_id: str) -> JobRow | None:
    """The job, locked for this transaction, if ``worker_id`` still holds it; else None.

    An expired lease that nobody took over still counts as held: the work is done and
    storing it beats running it again. A job claimed by another worker does not.
    """
    return session.scalars(_HELD, {"job_id": job_id, "worker_id": worker_id}).one_or_none()


def is_held(session: Session, job_id: str, worker_id: str) -> bool:
    """Whether ``worker_id`` still holds the job (a read: no lock, no write)."""
    statement = select(JobRow.id).where(JobRow.id == job_id, JobRow.status == "running",
                                        JobRow.lease_owner == worker_id)
    return session.scalar(statement) is not None


def renew_lease(session: Session, job_id: str, worker_id: str, lease_seconds: float) -> bool:
    """Extend the lease; False when this worker no longer holds the job."""
    result = session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.status == "running", JobRow.lease_owner == worker_id)
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def complete(session: Session, job_id: str, worker_id: str) -> bool:
    return _finish(session, job_id, worker_id, "succeeded", None)


# a job ended as succeeded by the worker that holds it, in one statement that also locks
# its row (as ``lock_if_held`` would) for the rest of the transaction
_COMPLETE_HELD = (update(JobRow)
                  .where(JobRow.id == bindparam("job_id"), JobRow.status == "running",
                         JobRow.lease_owner == bindparam("worker_id"))
                  .values(status="succeeded", lease_owner=None, lease_expires_at=None,
                          last_error=None, finished_at=bindparam("now"))
                  .execution_options(synchronize_session=False))


def complete_if_held(session: Session, job_id: str, worker_id: str) -> bool:
    """End the job as succeeded if ``worker_id`` still holds it (an expired lease that
    nobody took over still counts, as for ``lock_if_held``); False, and nothing written,
    if another worker has taken it over or it ended otherwise (cancelled)."""
    result = session.execute(_COMPLETE_HELD, {"job_id": job_id, "worker_id": worker_id,
                                              "now": utcnow()})
    return bool(result.rowcount)  # type: ignore[attr-defined]


def fail(session: Session, job_id: str, worker_id: str, error: str, *, retry: bool) -> str | None:
    """End this attempt with ``error``; requeue if ``retry`` and attempts remain.

    Returns the job's new status ("queued" or "failed"), or None if the worker had lost it.
    """
    job = lock_if_held(session, job_id, worker_id)
    if job is None:
        return None
    status = "queued" if retry and job.attempts < job.max_attempts else "failed"
    _end(job, status, error)
    session.flush()
    return status


def release(session: Session, job_id: str, worker_id: str) -> bool:
    """Give a job back untouched (the worker is shutting down): the attempt does not count."""
    job = lock_if_held(session, job_id, worker_id)
    if job is None:
        return False
    job.attempts = max(job.attempts - 1, 0)
    _end(job, "queued", job.last_error)
    session.flush()
    return True


def _finish(session: Session, job_id: str, worker_id: str, status: str,
            error: str | None) -> bool:
    job = lock_if_held(session, job_id, worker_id)
    if job is None:
        return False
    _end_flushed(session, job, status, error)
    return True


def _end_flushed(session: Session, job: JobRow, status: str, error: str | None) -> None:
    _end(job, status, error)
    session.flush()


def _end(job: JobRow, status: str, error: str | None) -> None:
    job.status = status
    job.lease_owner = None
    job.lease_expires_at = None
    job.last_error = error
    job.finished_at = utcnow() if status in ("succeeded", "failed") else None


def count_by_status(session: Session) -> dict[str, int]:
    """Jobs per status, every status present (for the Prometheus gauge)."""
    counts = dict.fromkeys(STATUSES, 0)
    rows = session.execute(select(JobRow.status, func.count()).group_by(JobRow.status))
    for status, count in rows:
        counts[status] = int(count)
    return counts
