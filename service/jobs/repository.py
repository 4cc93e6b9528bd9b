"""The queue's SQL: the jobs table is the queue (the pattern of Solid Queue, Oban, River).

A worker claims one job atomically: on PostgreSQL with ``SELECT ... FOR UPDATE SKIP
LOCKED``, on SQLite inside the engine's ``BEGIN IMMEDIATE`` transaction (one writer at a
time). The claim gives the worker a lease that it renews while the job runs; a running job
whose lease expired (its worker died) can be claimed again until ``max_attempts`` is spent.
Every function runs inside the caller's transaction and never commits.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.orm import Session

from service.db.models import JobRow, utcnow

STATUSES = ("queued", "running", "succeeded", "failed")


def enqueue(session: Session, kind: str, target_id: str, max_attempts: int) -> JobRow:
    job = JobRow(id=str(uuid.uuid4()), kind=kind, target_id=target_id, status="queued",
                 attempts=0, max_attempts=max_attempts, created_at=utcnow())
    session.add(job)
    session.flush()
    return job


def _claimable(now: datetime) -> ColumnElement[bool]:
    expired = and_(JobRow.status == "running", JobRow.lease_expires_at < now)
    return and_(or_(JobRow.status == "queued", expired), JobRow.attempts < JobRow.max_attempts)


def claim_next(session: Session, worker_id: str, lease_seconds: float) -> JobRow | None:
    """Claim the next job fairly across tenants; None if there is nothing to claim.

    Tenants take turns: the tenant with the fewest running jobs goes first, then the one
    whose last claim is oldest (never claimed: first), then the one whose oldest waiting
    job is oldest; within a tenant, its oldest job (queued, or running with an expired
    lease). So one tenant's hundred queued fits do not make another's single fit wait
    behind them. Jobs of the open mode (no tenant) are one more tenant.
    """
    now = utcnow()
    tenants = _tenants_in_turn(session, now)
    # First each tenant's oldest job in turn, unless another claimer holds it right now
    # (PostgreSQL: it is claiming it; SKIP LOCKED passes it over and the next tenant gets
    # this claim); when every tenant's oldest is held, the next of each tenant in turn.
    # SQLite renders no locking clause: BEGIN IMMEDIATE already serializes the claim.
    for oldest_only in (True, False):
        for tenant in tenants:
            job = session.scalars(_next_of(tenant, now, oldest_only)).one_or_none()
            if job is not None:
                return _lease(session, job, worker_id, lease_seconds, now)
    return None


def _next_of(tenant: str | None, now: datetime, oldest_only: bool) -> Select[JobRow]:
    """Lock a tenant's oldest claimable job (``oldest_only``: that one or none, if another
    transaction holds it; else the oldest that nobody holds)."""
    waiting = (select(JobRow).where(_claimable(now), _of_tenant(tenant))
               .order_by(JobRow.created_at, JobRow.id).limit(1))
    if oldest_only:
        head = waiting.with_only_columns(JobRow.id).scalar_subquery()
        waiting = select(JobRow).where(JobRow.id == head, _claimable(now))
    return waiting.with_for_update(skip_locked=True)


def _of_tenant(tenant: str | None) -> ColumnElement[bool]:
    return JobRow.tenant.is_(None) if tenant is None else JobRow.tenant == tenant


def _tenants_in_turn(session: Session, now: datetime) -> list[str | None]:
    """The tenants with a claimable job, in the order they take their turns."""
    waiting = {tenant: oldest for tenant, oldest in session.execute(
        select(JobRow.tenant, func.min(JobRow.created_at))
        .where(_claimable(now)).group_by(JobRow.tenant))}
    if len(waiting) <= 1:
        return list(waiting)  # one tenant (the usual case): no turns to take
    running = dict(session.execute(
        select(JobRow.tenant, func.count())
        .where(JobRow.status == "running", JobRow.lease_expires_at >= now)
        .group_by(JobRow.tenant)).all())
    # each tenant's newest claim, one index lookup apiece (ix_jobs_tenant_started_at)
    last_claim = {tenant: session.scalar(select(func.max(JobRow.started_at))
                                         .where(_of_tenant(tenant)))
                  for tenant in waiting}
    never = datetime.min.replace(tzinfo=UTC)

    def turn(tenant: str | None) -> tuple[int, datetime, datetime]:
        last = last_claim[tenant]
        return running.get(tenant, 0), last or never, _aware(waiting[tenant])

    return sorted(waiting, key=turn)


def _aware(value: datetime) -> datetime:
    # aggregates bypass the column type: SQLite hands back naive UTC (or text)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _lease(session: Session, job: JobRow, worker_id: str, lease_seconds: float,
           now: datetime) -> JobRow:
    job.status = "running"
    job.attempts += 1
    job.lease_owner = worker_id
    job.lease_expires_at = now + timedelta(seconds=lease_seconds)
    job.started_at = now
    job.finished_at = None
    session.flush()
    return job


def take_exhausted(session: Session) -> list[JobRow]:
    """Fail running jobs whose lease expired with no attempt left, and return them.

    Their worker died on the last attempt; the caller marks their targets failed.
    """
    now = utcnow()
    statement = (
        select(JobRow)
        .where(JobRow.status == "running", JobRow.lease_expires_at < now,
               JobRow.attempts >= JobRow.max_attempts)
        .with_for_update(skip_locked=True)
    )
    jobs = list(session.scalars(statement))
    for job in jobs:
        job.status = "failed"
        job.finished_at = now
        job.lease_owner = None
        job.lease_expires_at = None
        job.last_error = (
            f"attempt {job.attempts} of {job.max_attempts} ended without a result "
            "(the worker stopped renewing its lease: killed, crashed or cut off)")
    session.flush()
    return jobs


def get_job(session: Session, job_id: str) -> JobRow | None:
    return session.get(JobRow, job_id)


def lock_if_held(session: Session, job_id: str, worker_id: str) -> JobRow | None:
    """The job, locked for this transaction, if ``worker_id`` still holds it; else None.

    An expired lease that nobody took over still counts as held: the work is done and
    storing it beats running it again. A job claimed by another worker does not.
    """
    statement = (
        select(JobRow)
        .where(JobRow.id == job_id, JobRow.status == "running", JobRow.lease_owner == worker_id)
        .with_for_update()
    )
    return session.scalars(statement).one_or_none()


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
    _end(job, status, error)
    session.flush()
    return True


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
