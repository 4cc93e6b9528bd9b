"""API keys: made, listed and revoked by ``mixedfit keys``; checked on every /v1 request.

A key is ``mf_`` followed by 32 random bytes (``secrets.token_urlsafe``); it is shown once,
when made, and only its SHA-256 is stored. A presented key is hashed and looked up by that
digest, and the digests are compared with ``hmac.compare_digest``, so neither the lookup nor
the comparison depends on how much of a guessed key is right.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from service.auth import repository
from service.auth.principal import OPEN, Principal
from service.db.models import ApiKeyRow, utcnow

KEY_PREFIX = "mf_"
SECRET_BYTES = 32
PREFIX_SHOWN = len(KEY_PREFIX) + 4  # listings show "mf_" and the key's next four characters
# what a key can look like; anything else is refused without a query
KEY_PATTERN = re.compile(r"mf_[A-Za-z0-9_-]{16,128}")
TENANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,199}")


class KeyCommandError(ValueError):
    """A key command that cannot be carried out (unknown id, bad tenant name)."""


@dataclass(frozen=True)
class NewKey:
    """A key just made: ``key`` is shown to its owner once and stored nowhere."""

    row: ApiKeyRow
    key: str


@dataclass(frozen=True)
class Refusal:
    """Why a request that needs a key is refused: RFC 6750's ``error`` (None when no key
    was sent at all) and a sentence for the problem document."""

    error: str | None
    detail: str


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_tenant(tenant: str) -> str:
    if not TENANT_PATTERN.fullmatch(tenant):
        raise KeyCommandError(
            f"Tenant names are 1 to 200 letters, digits and . _ @ -, starting with a letter "
            f"or digit; {tenant!r} is not one.")
    return tenant


def create_key(session: Session, tenant: str, admin: bool = False) -> NewKey:
    """Make a key for ``tenant`` (an admin key sees every tenant's resources)."""
    key = KEY_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    row = ApiKeyRow(id=str(uuid.uuid4()), tenant=check_tenant(tenant), admin=admin,
                    key_sha256=digest(key), prefix=key[:PREFIX_SHOWN], created_at=utcnow())
    return NewKey(row=repository.add_key(session, row), key=key)


def list_keys(session: Session) -> list[ApiKeyRow]:
    return repository.list_keys(session)


def revoke_key(session: Session, key_id: str) -> tuple[ApiKeyRow, bool]:
    """Revoke a key at once; returns it and whether it was still active."""
    row = repository.get_key(session, key_id)
    if row is None:
        raise KeyCommandError(f"There is no API key with id {key_id!r} (see `mixedfit keys list`).")
    active = row.revoked_at is None
    repository.revoke(session, row, utcnow())
    return row, active


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None if there is none."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def authenticate(session: Session, authorization: str | None) -> Principal | Refusal:
    """Who sent ``authorization``: the key's principal, ``OPEN`` while no key is active, or
    why the request is refused."""
    token = bearer_token(authorization)
    if token is not None and KEY_PATTERN.fullmatch(token):
        presented = digest(token)
        row = repository.find_by_digest(session, presented)
        if (row is not None and hmac.compare_digest(row.key_sha256, presented)
                and row.revoked_at is None):
            return Principal(tenant=row.tenant, admin=row.admin, key_id=row.id)
    if not repository.any_active(session):
        return OPEN
    if authorization is None:
        return Refusal(None, "This API needs an API key: send it as 'Authorization: Bearer "
                             "<key>' (keys are made with `mixedfit keys create`).")
    if token is None:
        return Refusal("invalid_request", "The Authorization header must be 'Bearer <key>'.")
    return Refusal("invalid_token", "The API key is not valid: unknown, mistyped or revoked.")
