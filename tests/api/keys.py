"""API keys for tests, made and revoked through the key store on the test's database (as
``mixedfit keys`` does), and the headers that send them."""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass

from service.auth import keys
from service.db.changes import ChangeToken
from service.db.session import create_db_engine, make_session_factory


@dataclass(frozen=True)
class Key:
    id: str
    key: str
    tenant: str
    admin: bool

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_key(database_url: str, tenant: str, admin: bool = False) -> Key:
    engine = create_db_engine(database_url)
    try:
        with make_session_factory(engine).begin() as session:
            made = keys.create_key(session, tenant, admin=admin)
            return Key(made.row.id, made.key, tenant, admin)
    finally:
        engine.dispose()


def revoke_key(database_url: str, key: Key) -> None:
    engine = create_db_engine(database_url)
    try:
        with make_session_factory(engine).begin() as session:
            keys.revoke_key(session, key.id)
    finally:
        engine.dispose()


def wait_until_heard(changes: ChangeToken, before: Hashable | None,
                     timeout: float = 5.0) -> None:
    """Wait until the app's change token has moved past ``before``: on PostgreSQL a key
    written by another process is seen from the first request after its notification is
    heard (a moment after the commit; ``service.db.changes``), which a request sent at
    once can beat. On SQLite, or with no listener connected, it has moved already."""
    deadline = time.monotonic() + timeout
    while before is not None and changes.token() == before:
        if time.monotonic() > deadline:
            raise AssertionError(f"the change was not heard within {timeout} s")
        time.sleep(0.005)
