"""SQL for API keys. Only a key's SHA-256 is stored; lookups are by that digest."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import ApiKeyRow


def add_key(session: Session, row: ApiKeyRow) -> ApiKeyRow:
    session.add(row)
    session.flush()
    return row


def find_by_digest(session: Session, digest: str) -> ApiKeyRow | None:
    """The key whose SHA-256 is ``digest`` (revoked or not), if any."""
    return session.scalars(select(ApiKeyRow).where(ApiKeyRow.key_sha256 == digest)
                           ).one_or_none()


def any_active(session: Session) -> bool:
    """Whether some key is not revoked: then every /v1 request needs one."""
    statement = select(ApiKeyRow.id).where(ApiKeyRow.revoked_at.is_(None)).limit(1)
    return session.scalars(statement).first() is not None


def list_keys(session: Session) -> list[ApiKeyRow]:
    """Every key, oldest first."""
    return list(session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at,
                                                           ApiKeyRow.id)))


def get_key(session: Session, key_id: str) -> ApiKeyRow | None:
    if "\x00" in key_id:
        return None
    return session.get(ApiKeyRow, key_id)


def revoke(session: Session, row: ApiKeyRow, when: datetime) -> None:
    if row.revoked_at is None:
        row.revoked_at = when
        session.flush()
