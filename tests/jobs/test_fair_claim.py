"""Workers claim jobs fairly across tenants (SQLite and PostgreSQL): one tenant's 50 queued
fits do not make another tenant's single fit wait behind them, and concurrent claimers on
PostgreSQL still never take the same job (FOR UPDATE SKIP LOCKED)."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import JobRow, utcnow
from service.jobs import repository as jobs

SessionFactory = sessionmaker[Session]


# creation times in the order of the calls, whatever the clock's resolution
START = utcnow() - timedelta(days=1)
TICKS = itertools.count()


def queue(session_factory: SessionFactory, tenant: str | None, n: int) -> list[str]:
    """``n`` queued jobs of ``tenant``, each created after every job queued before it."""
    with session_factory.begin() as session:
        created = []
        for _ in range(n):
            job = jobs.enqueue(session, "fit", "model", 3)
            job.tenant = tenant
            job.created_at = START + timedelta(milliseconds=next(TICKS))
            created.append(job.id)
        session.flush()
    return created


def claim(session_factory: SessionFactory, worker: str = "w") -> JobRow | None:
    with session_factory.begin() as session:
        return jobs.claim_next(session, worker, 30.0, max_recoveries=10)


def finish(session_factory: SessionFactory, job: JobRow, worker: str = "w") -> None:
    with session_factory.begin() as session:
        assert jobs.complete(session, job.id, worker)


def test_one_worker_takes_turns_between_tenants(session_factory: SessionFactory) -> None:
    a = queue(session_factory, "a", 50)
    b = queue(session_factory, "b", 1)
    order = []
    for _ in range(51):
        job = claim(session_factory)
        assert job is not None
        order.append(job.id)
        finish(session_factory, job)
    assert claim(session_factory) is None
    # a's oldest first (it was waiting longest), then b's: not after a's other 49
    assert order[:2] == [a[0], b[0]]
    # each tenant's own jobs keep their order
    assert [i for i in order if i in set(a)] == a


def test_the_tenant_with_fewest_running_jobs_goes_first(
        session_factory: SessionFactory) -> None:
    a = queue(session_factory, "a", 50)
    b = queue(session_factory, "b", 1)
    first, second, third = (claim(session_factory, f"w{i}") for i in range(3))
    assert first is not None and second is not None and third is not None
    # two workers busy at once: a's first job and b's only one, then a's next
    assert [first.id, second.id, third.id] == [a[0], b[0], a[1]]


def test_a_tenant_never_served_goes_before_one_just_served(
        session_factory: SessionFactory) -> None:
    """Open-mode jobs (no tenant) are a tenant of their own, and a newcomer is not kept
    behind tenants that have been served."""
    a = queue(session_factory, "a", 3)
    job = claim(session_factory)
    assert job is not None and job.id == a[0]
    finish(session_factory, job)
    untenanted = queue(session_factory, None, 2)
    c = queue(session_factory, "c", 1)
    order = []
    while (job := claim(session_factory)) is not None:
        order.append(job.id)
        finish(session_factory, job)
    # never served: the open mode's (older) then c's; then a, which was served, and turns
    assert order == [untenanted[0], c[0], a[1], untenanted[1], a[2]]


def test_an_expired_lease_is_claimed_again_in_its_tenants_turn(
        session_factory: SessionFactory) -> None:
    a = queue(session_factory, "a", 2)
    b = queue(session_factory, "b", 1)
    with session_factory.begin() as session:
        dead = jobs.claim_next(session, "dead", lease_seconds=-1.0,  # its worker died
                               max_recoveries=10)
        assert dead is not None and dead.id == a[0]
    job = claim(session_factory)
    # the dead worker's job is no longer running: a has none running, but was served
    assert job is not None and job.id == b[0]
    job = claim(session_factory)
    # recovered: the same attempt
    assert job is not None and job.id == a[0] and (job.attempts, job.recoveries) == (1, 1)


def test_concurrent_claimers_take_distinct_jobs_of_every_tenant(
        session_factory: SessionFactory) -> None:
    n_workers = 4
    a = queue(session_factory, "a", 50)
    b = queue(session_factory, "b", 1)
    start = threading.Barrier(n_workers)
    claimed: list[str] = []
    lock = threading.Lock()

    def work(worker: str) -> None:
        start.wait()
        job = claim(session_factory, worker)
        if job is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(n_workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(claimed) == len(set(claimed)) == n_workers
    assert b[0] in claimed
    assert set(claimed) - {b[0]} <= set(a)


def test_the_claim_reads_each_tenants_last_claim(session_factory: SessionFactory) -> None:
    """A tenant served long ago goes before one served a moment ago, whatever their
    queues' ages."""
    old, recent = queue(session_factory, "old", 1), queue(session_factory, "recent", 1)
    with session_factory.begin() as session:
        for tenant, ago in (("old", 3600), ("recent", 1)):
            served = jobs.enqueue(session, "fit", "model", 3)
            served.tenant, served.status = tenant, "succeeded"
            served.started_at = utcnow() - timedelta(seconds=ago)
    # "old" queued first and was served long ago: first either way; now the reverse
    with session_factory.begin() as session:
        for job_id, age in ((old[0], 0), (recent[0], 10)):
            row = session.get(JobRow, job_id)
            assert row is not None
            row.created_at = utcnow() - timedelta(seconds=age)
    job = claim(session_factory)
    assert job is not None and job.id == old[0]


def _statements_of(session: Session) -> list[str]:
    """The SQL statements ``session``'s connection sends from now on."""
    sent: list[str] = []
    event.listen(session.connection(), "before_cursor_execute",
                 lambda _c, _cur, statement, *_rest: sent.append(statement))
    return sent


def test_a_claimer_beaten_to_the_only_job_asks_no_more(
        session_factory: SessionFactory, database_url: str) -> None:
    """Two workers woken by one queued job: the one that finds it held by the other stops
    after the tenants' count and one UPDATE (SQLite: the claims never overlap)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serializes claims (BEGIN IMMEDIATE): no claim finds one held")
    queue(session_factory, "a", 1)
    queue(session_factory, "b", 1)
    with session_factory.begin() as first, session_factory.begin() as second:
        taken = [jobs.claim_next(first, "w1", 30.0, max_recoveries=10),
                 jobs.claim_next(first, "w1", 30.0, max_recoveries=10)]
        assert all(job is not None for job in taken)
        sent = _statements_of(second)
        # both jobs are locked by the first claimer's open transaction
        assert jobs.claim_next(second, "w2", 30.0, max_recoveries=10) is None
    updates = [s for s in sent if s.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 2  # each tenant's oldest once; no second pass over them
