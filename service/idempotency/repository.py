"""SQL for idempotency records: claim a key, store or release its answer, forget expired ones.

A claim is one short transaction. Two requests racing for a new key both try to insert it;
the primary key lets one win (PostgreSQL makes the other wait for the winner's commit and
then fail, SQLite's ``BEGIN IMMEDIATE`` serializes them), and the loser reads the winner's
record. An expired record is taken over by a conditional UPDATE, which only one of several
racing requests can make.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import IdempotencyRecordRow

# attempts at a claim that lost a race (insert against insert, takeover against takeover)
CLAIM_ATTEMPTS = 3


@dataclass(frozen=True)
class Claimed:
    """This request holds the key: handle it, then ``complete`` or ``release``."""

    token: str


@dataclass(frozen=True)
class InProgress:
    """The key's first request is still being handled."""


@dataclass(frozen=True)
class Mismatch:
    """The key was first used for another request."""


@dataclass(frozen=True)
class Replay:
    """The key's first answer, to send again."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


Outcome = Claimed | InProgress | Mismatch | Replay


def claim(factory: sessionmaker[Session], tenant: str, key: str, fingerprint: str,
          now: datetime, lease: timedelta) -> Outcome:
    """Claim ``key`` for a request with this fingerprint, or say why not."""
    for _ in range(CLAIM_ATTEMPTS):
        with factory() as session:
            outcome = _claim_once(session, tenant, key, fingerprint, now, lease)
            if outcome is not None:
                return outcome
    return InProgress()  # lost every race: someone else is handling this key right now


def _claim_once(session: Session, tenant: str, key: str, fingerprint: str, now: datetime,
                lease: timedelta) -> Outcome | None:
    token = secrets.token_hex(16)
    row = session.get(IdempotencyRecordRow, (tenant, key))
    if row is None:
        session.add(IdempotencyRecordRow(
            tenant=tenant, key=key, fingerprint=fingerprint, lock_token=token, status=None,
            headers=None, body=None, created_at=now, expires_at=now + lease))
        try:
            session.commit()
        except IntegrityError:  # another request inserted it first
            session.rollback()
            return None
        return Claimed(token)
    if row.expires_at <= now:
        taken = session.execute(
            update(IdempotencyRecordRow)
            .where(IdempotencyRecordRow.tenant == tenant, IdempotencyRecordRow.key == key,
                   IdempotencyRecordRow.expires_at <= now)
            .values(fingerprint=fingerprint, lock_token=token, status=None, headers=None,
                    body=None, created_at=now, expires_at=now + lease)
            .execution_options(synchronize_session=False))
        session.commit()
        return Claimed(token) if taken.rowcount == 1 else None  # type: ignore[attr-defined]
    session.rollback()
    if row.fingerprint != fingerprint:
        return Mismatch()
    if row.status is None:
        return InProgress()
    return Replay(row.status, [(name, value) for name, value in row.headers or []],
                  row.body or b"")


def complete(factory: sessionmaker[Session], tenant: str, key: str, token: str, status: int,
             headers: list[tuple[str, str]], body: bytes, expires_at: datetime) -> bool:
    """Store the answer of the request that holds ``token``; False when it lost the key
    (its lease ran out and another request took the key over)."""
    with factory() as session:
        result = session.execute(
            update(IdempotencyRecordRow)
            .where(IdempotencyRecordRow.tenant == tenant, IdempotencyRecordRow.key == key,
                   IdempotencyRecordRow.lock_token == token)
            .values(status=status, headers=[[name, value] for name, value in headers],
                    body=body, expires_at=expires_at)
            .execution_options(synchronize_session=False))
        session.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]


def release(factory: sessionmaker[Session], tenant: str, key: str, token: str) -> None:
    """Forget the claim of the request that holds ``token`` (its answer is not kept)."""
    with factory() as session:
        session.execute(
            delete(IdempotencyRecordRow)
            .where(IdempotencyRecordRow.tenant == tenant, IdempotencyRecordRow.key == key,
                   IdempotencyRecordRow.lock_token == token)
            .execution_options(synchronize_session=False))
        session.commit()


def delete_expired(factory: sessionmaker[Session], now: datetime) -> int:
    """Delete every expired record; how many there were."""
    with factory() as session:
        result = session.execute(
            delete(IdempotencyRecordRow).where(IdempotencyRecordRow.expires_at <= now)
            .execution_options(synchronize_session=False))
        session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]


def get_record(session: Session, tenant: str, key: str) -> IdempotencyRecordRow | None:
    return session.scalars(select(IdempotencyRecordRow).where(
        IdempotencyRecordRow.tenant == tenant, IdempotencyRecordRow.key == key)).one_or_none()
